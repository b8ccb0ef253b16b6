#!/usr/bin/python3
"""Hostile requests interleaved with good ones against onevit serve (docs/serve.md).

    /usr/bin/python3 bench/serve/hostile_mix.py --model bench/models/vit_tiny_patch16_224.ovit \\
        [--hostile 1000] [--good-clients 4] [--hostile-clients 4]

`--hostile-clients` threads send the catalog of tests/serve/serve_harness.py
(hostile_requests: malformed, oversized, truncated, wrong shapes and types, bad
images, disconnects mid-request) in turn, every 50th a client trickling bytes
past --request-timeout-s instead; meanwhile `--good-clients` threads send good
requests (binary tensors, kept-alive connections), each answer checked against
`onevit infer`. Counts: hostile requests answered or dropped as specified, good
requests answered right, lost (an error, no answer, wrong logits); the server
must still run, then exit 0 on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "serve"))
from serve_harness import (GoodClient, ServeProcess, hostile_requests, http_request, model_name_of,  # noqa: E402
                           reference_logits, trickle)

MAX_BODY = 4_000_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onevit", default=os.path.join(REPO, "build", "apps", "onevit"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--hostile", type=int, default=1000)
    ap.add_argument("--good-clients", type=int, default=4)
    ap.add_argument("--hostile-clients", type=int, default=4)
    args = ap.parse_args()
    name = model_name_of(args.model)
    with tempfile.TemporaryDirectory(prefix="onevit_hostile_") as tmp, \
            ServeProcess(args.onevit, args.model, "--max-batch", "4", "--request-timeout-s", "2",
                         "--max-body-bytes", str(MAX_BODY), "--max-header-bytes", "8192") as server:
        port = server.http_port
        shape = tuple(http_request(port, "GET", f"/v2/models/{name}").json()["inputs"][0]["shape"][1:])
        x = np.random.default_rng(0).standard_normal((1,) + shape).astype(np.float32)
        expected = reference_logits(args.onevit, args.model, x, tmp)
        catalog = hostile_requests(name, shape, 4, MAX_BODY)

        lock = threading.Lock()
        next_hostile = [0]
        hostile_ok, hostile_wrong, good_ok, good_lost = [0], [], [0], []
        stop_good = threading.Event()

        def hostile_client() -> None:
            while True:
                with lock:
                    i = next_hostile[0]
                    next_hostile[0] += 1
                if i >= args.hostile:
                    return
                if i % 50 == 49:
                    what, problem = "a client trickling bytes", "" if trickle(port, name) else "not dropped"
                else:
                    case = catalog[i % len(catalog)]
                    try:
                        what, problem = case.what, case.send(port)
                    except OSError as e:  # counted, not a thread that dies and hides the rest of its share
                        what, problem = case.what, f"client error: {e}"
                with lock:
                    if problem:
                        hostile_wrong.append(f"{what}: {problem}")
                    else:
                        hostile_ok[0] += 1

        def good_client() -> None:
            client = GoodClient(port, name, x, expected)
            while not stop_good.is_set():
                problem = client.send()
                with lock:
                    if problem:
                        good_lost.append(problem)
                    else:
                        good_ok[0] += 1
            client.close()

        good = [threading.Thread(target=good_client) for _ in range(args.good_clients)]
        hostile = [threading.Thread(target=hostile_client) for _ in range(args.hostile_clients)]
        for t in good + hostile:
            t.start()
        for t in hostile:
            t.join()
        stop_good.set()
        for t in good:
            t.join()
        alive = server.alive()
        status = server.stop()

    print(f"hostile: {args.hostile} sent ({len(catalog)} kinds, every 50th a trickling client), "
          f"{hostile_ok[0]} answered or dropped as specified, {len(hostile_wrong)} not")
    print(f"good: {good_ok[0]} answered right, {len(good_lost)} lost")
    print(f"server: {'running' if alive else 'DEAD'} after the mix, exit status {status} on SIGTERM")
    for problem in (hostile_wrong + good_lost)[:10]:
        print(f"  {problem}")
    return 0 if alive and status == 0 and not hostile_wrong and not good_lost else 1


if __name__ == "__main__":
    sys.exit(main())
