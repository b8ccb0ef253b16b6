"""How every peer is timed: the rule of `onevit bench`, so that the figures compare.

`warmup` untimed runs, then up to `iterations` timed requests, stopping after `max_seconds`
(at least one). One request in flight (latency): images/s = batch / median latency.
Several in flight (a throughput configuration): each request's latency from submit to
result, images/s = all images / wall time.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def summary(latencies_ms: list[float], batch: int, wall_s: float | None = None) -> dict:
    ordered = sorted(latencies_ms)
    median = statistics.median(ordered)
    images_per_s = batch * 1e3 / median if wall_s is None else batch * len(ordered) / wall_s
    return {"latency_ms_median": median, "latency_ms_min": ordered[0], "latency_ms_max": ordered[-1],
            "iterations": len(ordered), "images_per_s": images_per_s}


def time_sync(run: Callable[[], object], batch: int, warmup: int, iterations: int, max_seconds: float) -> dict:
    """One request at a time: run() returns when its result is ready."""
    for _ in range(warmup):
        run()
    latencies = []
    started = time.perf_counter()
    while len(latencies) < iterations and (not latencies or time.perf_counter() - started < max_seconds):
        t0 = time.perf_counter()
        run()
        latencies.append((time.perf_counter() - t0) * 1e3)
    return summary(latencies, batch)


def time_async(start: Callable[[float], None], wait_all: Callable[[], None],
               on_done: Callable[[Callable[[float], None]], None], in_flight: int, batch: int, warmup: int,
               iterations: int, max_seconds: float) -> dict:
    """Several requests in flight: start(submitted_at) queues one, blocking while all slots are busy;
    on_done(f) makes the engine call f(submitted_at) as each request ends; wait_all() drains."""
    latencies: list[float] = []
    on_done(lambda submitted_at: None)
    for _ in range(in_flight * warmup):
        start(time.perf_counter())
    wait_all()
    on_done(lambda submitted_at: latencies.append((time.perf_counter() - submitted_at) * 1e3))
    started = time.perf_counter()
    issued = 0
    while issued < in_flight * iterations and (issued == 0 or time.perf_counter() - started < max_seconds):
        start(time.perf_counter())
        issued += 1
    wait_all()
    return summary(latencies, batch, time.perf_counter() - started)
