#!/usr/bin/python3
"""Images/s of onevit.dask on a LocalCluster against one `onevit classify` process, in interleaved
rounds on the same images (this is a shared machine: compare only within a round).

    PYTHONPATH=build/engine/python /usr/bin/python3 bench/dask_throughput.py \
        --model deit_tiny.ovit ../shared/data/imagenet-sample

Per round:
  program   `onevit classify --json` on all the cores (one process, --threads of the engine: all);
  cluster   onevit.dask.classify() on a running LocalCluster of --workers processes x 1
            thread (model loading on the workers included, cluster start-up not);
  command   `python3 -m onevit.dask classify --workers N`, everything included (cluster start-up too).
Then the time per task of 2000 empty tasks: the distribution layer's own cost per task, for
estimates of larger clusters.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "reference"))
from harness import argument_parser, resolve_onevit  # noqa: E402  (first: it sets the OpenMP wait policy)

from distributed import Client, LocalCluster  # noqa: E402

import onevit.dask  # noqa: E402


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def run_quietly(cmd: list[str]) -> None:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def noop(i: int) -> int:
    return i


def main() -> int:
    ap = argument_parser(__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    onevit_bin = resolve_onevit(args.onevit, args.repo)
    images = onevit.dask.expand_inputs(args.paths)
    n = len(images)

    ratios = []
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        for round_ in range(args.rounds):
            program = timed(lambda: run_quietly([onevit_bin, "classify", "--json", "--model", args.model,
                                                 *args.paths]))
            on_cluster = timed(lambda: onevit.dask.classify(client, args.model, images, top=5))
            command = timed(lambda: run_quietly([sys.executable, "-m", "onevit.dask", "classify", "--model",
                                                 args.model, "--workers", str(args.workers), *args.paths]))
            ratios.append(program / on_cluster)
            print(f"round {round_ + 1}: program {n / program:.1f} images/s, cluster {n / on_cluster:.1f} images/s "
                  f"({program / on_cluster:.3f}x the program), command with start-up {n / command:.1f} images/s",
                  flush=True)
        # Scheduler + worker round trip of an empty task: the distribution layer's cost per task here.
        empty = timed(lambda: client.gather(client.map(noop, range(2000), pure=False))) / 2000
    print(f"median cluster/program over {args.rounds} rounds: {statistics.median(ratios):.3f}x "
          f"({args.workers} workers x 1 thread vs one process on {os.cpu_count()} cores, {n} images)")
    print(f"empty tasks: {1e3 * empty:.3f} ms each (2000 submitted at once, {args.workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
