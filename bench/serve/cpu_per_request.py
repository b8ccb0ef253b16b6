#!/usr/bin/python3
"""The CPU time onevit serve spends per request, thread by thread, for one or more builds in
alternation (an A/B of the server's own cost that the machine's load barely moves: on-CPU time
from /proc/PID/task/*/schedstat, not wall time; docs/serve.md).

    /usr/bin/python3 bench/serve/cpu_per_request.py --model bench/models/vit_tiny_patch16_224.ovit \\
        --onevit A/build/apps/onevit B/build/apps/onevit [--rounds 2] [--clients 16] [--requests 25] \\
        [--precision f32] [--streams 0] [--hint throughput] [--max-batch 8] \\
        [--jpeg ../shared/data/imagenet-sample] [--by-thread]

Each round starts each build's server (--precision, --max-batch, 2 threads, --hint, --streams as given
or the server's choice), sends --clients kept-alive clients x --requests requests of one image after
one warm-up request each (binary tensors; with --jpeg, BYTES requests of that folder's JPEG photos,
one per request, in turn), and prints the milliseconds of CPU per request of every thread that used
any, the sum outside the model's threads (the transport, codec, decoding, batcher and answers) and
the total. With --by-thread, each thread's name, CPU and sleeps (voluntary context switches) per
request as well, how often another thread took its core (involuntary context switches) and its
minor page faults per request; with --stacks, each thread named by its role (stream thread, TBB
worker, batcher worker, HTTP I/O, ...) from gdb's backtrace of the server.
"""

from __future__ import annotations

import argparse
import os
import sys
import subprocess
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "serve"))
from serve_harness import ServeProcess, binary_tensor_body, http_request, image_body, model_name_of  # noqa: E402

import http.client  # noqa: E402


class ThreadFigures:
    """One thread's name, on-CPU seconds, voluntary context switches (its sleeps), involuntary ones
    (another thread took its core) and minor page faults (pages the kernel mapped in and zeroed)."""

    def __init__(self, name: str, cpu_s: float, sleeps: int, preempted: int, faults: int):
        self.name, self.cpu_s, self.sleeps, self.preempted, self.faults = name, cpu_s, sleeps, preempted, faults


def census(pid: int) -> dict[str, ThreadFigures]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                cpu = int(f.read().split()[0]) / 1e9
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                switches = {k: int(v) for k, v in (line.split(":") for line in f if "ctxt_switches" in line)}
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                faults = int(f.read().rsplit(")", 1)[1].split()[7])  # minflt, the stat file's 10th field
        except OSError:
            continue  # the thread ended
        out[tid] = ThreadFigures(name, cpu, switches["voluntary_ctxt_switches"],
                                 switches["nonvoluntary_ctxt_switches"], faults)
    return out


# A thread's role, from the first of its frames that names one (gdb's backtrace, innermost first).
ROLES = [("Stream::drive", "stream thread"), ("Batcher::work", "batcher worker"),
         ("asio::detail::scheduler::run", "HTTP I/O"), ("SignalWatcher", "signals"), ("grpc", "gRPC"),
         ("absl", "gRPC"), ("gpr_", "gRPC"), ("thread_pool", "decoder"), ("tbb", "TBB worker")]


def thread_roles(pid: int) -> dict[str, str]:
    """Each thread's role, read from its stack with gdb (the server's threads are unnamed); an
    unnamed frame-less worker, a futex wait under start_thread, is the arena's TBB worker."""
    out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 16"],
                         capture_output=True, text=True).stdout
    roles = {}
    for block in out.split("\nThread ")[1:]:
        tid = block.split("LWP ", 1)[1].split(")", 1)[0] if "LWP " in block else ""
        role = next((name for key, name in ROLES if key in block), "TBB worker (no symbol)")
        if "main (" in block:
            role = "main"
        roles[tid] = role
    return roles


def request_bodies(shape: tuple, jpeg: str | None) -> list[tuple[bytes, int]]:
    if not jpeg:
        return [binary_tensor_body(np.random.default_rng(0).standard_normal((1,) + shape).astype(np.float32))]
    photos = sorted(os.path.join(jpeg, f) for f in os.listdir(jpeg) if f.lower().endswith((".jpg", ".jpeg")))
    if not photos:
        raise SystemExit(f"no JPEG photos in {jpeg}")
    return [image_body([open(p, "rb").read()]) for p in photos[:64]]


def measure(onevit: str, args) -> tuple[list[tuple[str, float, float, float, float]], float]:
    """(thread name, ms of CPU, sleeps, preemptions, page faults) per request of each thread, by CPU ascending;
    and the clients' median request time in seconds (wall clock: the machine's load moves it)."""
    name = model_name_of(args.model)
    streams = ["--streams", str(args.streams)] if args.streams else []
    with ServeProcess(onevit, args.model, "--precision", args.precision, "--max-batch", str(args.max_batch),
                      "--threads", "2", "--hint", args.hint, *streams) as server:
        shape = tuple(http_request(server.http_port, "GET", f"/v2/models/{name}").json()["inputs"][0]["shape"][1:])
        bodies = request_bodies(shape, args.jpeg)

        def client(first: int, n: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=120)
            for i in range(n):
                body, header = bodies[(first + i) % len(bodies)]
                sent = time.perf_counter()
                conn.request("POST", f"/v2/models/{name}/infer", body,
                             {"Inference-Header-Content-Length": str(header)})
                reply = conn.getresponse()
                reply.read()
                if reply.status != 200:
                    raise SystemExit(f"status {reply.status} from {onevit}")
                latencies.append(time.perf_counter() - sent)
            conn.close()

        latencies: list[float] = []
        for c in range(args.clients):
            client(c, 1)
        latencies.clear()
        before = census(server.proc.pid)
        threads = [threading.Thread(target=client, args=(c * args.requests, args.requests))
                   for c in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = census(server.proc.pid)
        if args.stacks:
            for tid, role in thread_roles(server.proc.pid).items():
                if tid in after:
                    after[tid].name = role
        server.stop()
    total = args.clients * args.requests
    none = ThreadFigures("", 0.0, 0, 0, 0)
    rows = [(a.name, (a.cpu_s - before.get(t, none).cpu_s) * 1e3 / total,
             (a.sleeps - before.get(t, none).sleeps) / total, (a.preempted - before.get(t, none).preempted) / total,
             (a.faults - before.get(t, none).faults) / total)
            for t, a in after.items()]
    return sorted(rows, key=lambda row: row[1]), float(np.median(latencies))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--onevit", nargs="+", default=[os.path.join(REPO, "build", "apps", "onevit")])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=25)
    ap.add_argument("--precision", default="f32")
    ap.add_argument("--streams", type=int, default=0, help="0: the server's choice")
    ap.add_argument("--hint", default="throughput", help="latency, with --clients 1 --max-batch 1: the c=1 server")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--jpeg", help="a folder of JPEG photos: image requests instead of tensors")
    ap.add_argument("--by-thread", action="store_true", help="each thread's name, CPU and sleeps per request")
    ap.add_argument("--stacks", action="store_true",
                    help="name each thread by its role, from a gdb backtrace at the end (needs gdb and ptrace)")
    args = ap.parse_args()
    for r in range(args.rounds):
        for onevit in args.onevit:
            rows, p50 = measure(onevit, args)
            # The model's threads are the busiest: streams x threads of them (2 threads in all here).
            ms = [row[1] for row in rows]
            busy = [v for v in ms if v >= 0.001]
            print(f"round {r + 1} {onevit}: outside the model threads {sum(ms[:-2]):.3f} ms, all {sum(ms):.3f} ms "
                  f"per request; by thread: {' '.join(f'{v:.3f}' for v in busy)}; p50 latency {p50 * 1e3:.2f} ms "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
            if args.by_thread:
                for thread, cpu, sleeps, preempted, faults in reversed(rows):
                    if cpu >= 0.001 or sleeps > 0:
                        print(f"    {thread:<16} {cpu:7.3f} ms  {sleeps:6.2f} sleeps  {preempted:6.2f} preempted  "
                              f"{faults:7.1f} page faults", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
