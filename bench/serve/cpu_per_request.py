#!/usr/bin/python3
"""The CPU time onevit serve spends per binary-tensor request, thread by thread, for one or more
builds in alternation (an A/B of the server's own cost that the machine's load barely moves:
on-CPU time from /proc/PID/task/*/schedstat, not wall time; docs/serve.md).

    /usr/bin/python3 bench/serve/cpu_per_request.py --model bench/models/vit_tiny_patch16_224.ovit \\
        --onevit A/build/apps/onevit B/build/apps/onevit [--rounds 2] [--clients 16] [--requests 25]

Each round starts each build's server (f32, --max-batch 8, 2 threads), sends --clients kept-alive
clients x --requests requests of one image after one warm-up request, and prints the milliseconds
of CPU per request of every thread that used any, the sum outside the two busiest (the model's
threads: the transport, codec, batcher and answers) and the total.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "serve"))
from serve_harness import GoodClient, ServeProcess, http_request, model_name_of  # noqa: E402


def cpu_seconds(pid: int) -> dict[str, float]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0]) / 1e9
        except OSError:
            pass  # the thread ended
    return out


def measure(onevit: str, model: str, clients: int, requests: int) -> list[float]:
    """ms of CPU per request of each thread, ascending."""
    name = model_name_of(model)
    with ServeProcess(onevit, model, "--precision", "f32", "--max-batch", "8", "--threads", "2") as server:
        shape = tuple(http_request(server.http_port, "GET", f"/v2/models/{name}").json()["inputs"][0]["shape"][1:])
        x = np.random.default_rng(0).standard_normal((1,) + shape).astype(np.float32)

        def client(n: int) -> None:
            good = GoodClient(server.http_port, name, x, None)
            for _ in range(n):
                good.conn.request("POST", good.path, good.body, good.headers)
                good.conn.getresponse().read()
            good.close()

        client(1)
        before = cpu_seconds(server.proc.pid)
        threads = [threading.Thread(target=client, args=(requests,)) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = cpu_seconds(server.proc.pid)
        server.stop()
    total = clients * requests
    return sorted((after[t] - before.get(t, 0.0)) * 1e3 / total for t in after)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--onevit", nargs="+", default=[os.path.join(REPO, "build", "apps", "onevit")])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=25)
    args = ap.parse_args()
    for r in range(args.rounds):
        for onevit in args.onevit:
            ms = measure(onevit, args.model, args.clients, args.requests)
            busy = [v for v in ms if v >= 0.001]
            print(f"round {r + 1} {onevit}: outside the model threads {sum(ms[:-2]):.3f} ms, all {sum(ms):.3f} ms "
                  f"per request; by thread: {' '.join(f'{v:.3f}' for v in busy)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
