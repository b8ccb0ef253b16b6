#!/usr/bin/python3
"""A soak of onevit serve: a steady request rate for minutes, every answer checked, the
server's resident memory sampled (docs/serve.md).

    /usr/bin/python3 bench/serve/soak.py --model bench/models/vit_tiny_patch16_224.ovit --rate 120 \\
        [--minutes 10] [--precision f32] [--max-batch 8] [--clients 16] [--warmup-s 5] [--csv soak_rss.csv]

`--rate` requests/s of one image each (binary tensor data), spread evenly over `--clients`
kept-alive connections, each sending on a fixed schedule (a late answer delays only its own
client) until `--minutes` have passed: on a machine too busy for the rate, the soak still ends
on time, with the rate it reached. Every answer must be a 200 with the logits of `onevit infer` on the same image.
RSS (VmRSS of the server) is sampled every 5 s into the CSV, with the machine's load average
(what else ran meanwhile) and the requests answered so far; flat means: the largest RSS
after --warmup-s (default 5 s: the server is at its plateau when ready, its request images
in slots made at start) within 5 % of the RSS then. Prints the counts,
the latency percentiles and the RSS summary; exits 1 on any failure or an RSS rise over 5 %.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "serve"))
from serve_harness import GoodClient, ServeProcess, http_request, model_name_of, reference_logits  # noqa: E402


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onevit", default=os.path.join(REPO, "build", "apps", "onevit"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--precision", default="f32")
    ap.add_argument("--rate", type=float, required=True, help="requests per second (of one image)")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--warmup-s", type=float, default=5)
    ap.add_argument("--csv", default="soak_rss.csv")
    ap.add_argument("serve_args", nargs="*", help="more onevit serve options (after --)")
    args = ap.parse_args()

    name = model_name_of(args.model)
    with tempfile.TemporaryDirectory(prefix="onevit_soak_") as tmp:
        with ServeProcess(args.onevit, args.model, "--precision", args.precision, "--max-batch",
                          str(args.max_batch), *args.serve_args) as server:
            shape = tuple(http_request(server.http_port, "GET", f"/v2/models/{name}").json()["inputs"][0]["shape"][1:])
            x = np.random.default_rng(0).standard_normal((1,) + shape).astype(np.float32)
            expected = reference_logits(args.onevit, args.model, x, tmp, args.precision)

            duration = args.minutes * 60
            interval = args.clients / args.rate  # each client's period
            start = time.monotonic() + 1.0
            latencies: list[float] = []
            failures: list[str] = []
            sent = [0] * args.clients
            lock = threading.Lock()

            def client(k: int) -> None:
                good = GoodClient(server.http_port, name, x, expected)
                n = 0
                while True:
                    due = start + k * interval / args.clients + n * interval
                    if due - start >= duration or time.monotonic() - start >= duration:
                        break
                    time.sleep(max(0.0, due - time.monotonic()))
                    n += 1
                    t0 = time.monotonic()
                    problem = good.send()
                    with lock:
                        sent[k] += 1
                        if problem:
                            failures.append(problem)
                        else:
                            latencies.append(time.monotonic() - t0)
                good.close()

            samples: list[tuple[float, int, float, int]] = []  # seconds, RSS KiB, load average, answered
            done = threading.Event()

            def sampler() -> None:
                while not done.wait(5.0 if samples else max(0.0, start - time.monotonic())):
                    with open("/proc/loadavg") as f:
                        load = float(f.read().split()[0])
                    samples.append((time.monotonic() - start, rss_kb(server.proc.pid), load, len(latencies)))

            watcher = threading.Thread(target=sampler)
            watcher.start()
            threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - start
            done.set()
            watcher.join()
            status = server.stop()

    with open(args.csv, "w") as f:
        f.write("seconds,rss_kb,load1,answered\n")
        for t, kb, load, answered in samples:
            f.write(f"{t:.1f},{kb},{load:.2f},{answered}\n")
    after = [kb for t, kb, _, _ in samples if t >= args.warmup_s]
    at_warmup = after[0] if after else 0
    peak = max(after) if after else 0
    rise = (peak - at_warmup) / at_warmup if at_warmup else float("nan")
    lat = np.array(latencies) * 1e3
    total = sum(sent)
    print(f"{total} requests in {elapsed:.0f} s ({total / elapsed:.1f}/s, asked {args.rate}/s), "
          f"{len(failures)} failed; latency p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms, "
          f"max {lat.max():.2f} ms")
    print(f"RSS: {samples[0][1] / 1024:.1f} MiB at start, {at_warmup / 1024:.1f} MiB at {args.warmup_s:.0f} s, "
          f"peak after it {peak / 1024:.1f} MiB ({100 * rise:+.2f} %), {samples[-1][1] / 1024:.1f} MiB at the end; "
          f"curve: {args.csv}")
    loads = [load for _, _, load, _ in samples]
    print(f"load average (1 min) during the soak: {min(loads):.1f} to {max(loads):.1f}, mean {np.mean(loads):.1f}")
    print(f"server exit status {status}")
    for problem in failures[:10]:
        print(f"  {problem}")
    return 0 if not failures and status == 0 and rise <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
