#!/usr/bin/python3
"""The Python module's cost per call: onevit.Model.run against `onevit bench`, same model, batch
and threads, in interleaved rounds (this is a shared machine: compare only within a round).

    PYTHONPATH=build/engine/python /usr/bin/python3 bench/python_overhead.py --model deit_tiny.ovit

Each round runs `onevit bench --json` (median latency of back-to-back requests)
and then the same number of back-to-back Model.run calls from Python on the
same kind of input (median of per-call times); prints both medians and
Python/C++ per round, and the median ratio over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "reference"))
from harness import argument_parser, resolve_onevit  # noqa: E402  (first: it sets the OpenMP wait policy)

import numpy as np  # noqa: E402

import onevit  # noqa: E402


def cpp_median_ms(onevit_bin: str, args: argparse.Namespace) -> float:
    out = subprocess.run([onevit_bin, "bench", "--model", args.model, "--batch", str(args.batch),
                          "--threads", str(args.threads), "--iters", str(args.iters), "--max-seconds", "60",
                          "--json"], capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)["latency_ms_median"])


def python_median_ms(model: onevit.Model, x: np.ndarray, iters: int) -> float:
    for _ in range(3):  # as bench: untimed runs first
        model.run(x)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        model.run(x)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> int:
    ap = argument_parser(__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    onevit_bin = resolve_onevit(args.onevit, args.repo)

    model = onevit.Model(args.model, threads=args.threads)
    arch = model.info["architecture"]
    x = np.random.default_rng(0).standard_normal(
        (args.batch, arch["channels"], arch["image_height"], arch["image_width"])).astype(np.float32)
    ratios = []
    for round_ in range(args.rounds):
        cpp = cpp_median_ms(onevit_bin, args)
        py = python_median_ms(model, x, args.iters)
        ratios.append(py / cpp)
        print(f"round {round_ + 1}: onevit bench {cpp:.3f} ms, Python Model.run {py:.3f} ms, "
              f"Python/C++ {py / cpp:.4f}", flush=True)
    print(f"median Python/C++ over {args.rounds} rounds: {statistics.median(ratios):.4f} "
          f"({model.threads} threads, batch {args.batch})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
