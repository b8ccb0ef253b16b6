#!/usr/bin/python3
"""Issue 10's many-core table by emulation, on any machine (one core is used):

    /usr/bin/python3 bench/emulate_table.py --onevit build/apps/onevit --models bench/models [--runs 5]

Each row is `onevit bench --emulate-threads T --json`: the T-thread plan, its
tiles timed one after another in one thread's CPU time (no memory-bandwidth
contention, no thread wake-ups: a real T-core run is slower). Efficiency is
against T times the one-thread matmul peak. Throughput rows (S streams of T/S
threads, no contention between streams) have the latency of the T/S-thread
plan and S times its images/s, hence its efficiency.
"""

import argparse
import json
import os
import subprocess
import sys

ROWS = [  # (model, batch, threads, streams)
    ("base", 1, 1, 1), ("base", 1, 2, 1), ("base", 1, 4, 1), ("base", 1, 8, 1), ("base", 1, 16, 1),
    ("base", 8, 16, 1), ("base", 8, 16, 4), ("base", 1, 16, 4),
    ("tiny", 1, 1, 1), ("tiny", 1, 2, 1), ("tiny", 1, 4, 1), ("tiny", 1, 8, 1), ("tiny", 1, 16, 1),
    ("tiny", 1, 32, 1), ("tiny", 1, 64, 1), ("tiny", 1, 16, 4), ("tiny", 8, 16, 4),
]


def emulate(onevit, model, batch, threads, runs):
    out = subprocess.run([onevit, "bench", "--model", model, "--batch", str(batch), "--emulate-threads",
                          str(threads), "--iters", str(runs), "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onevit", required=True)
    ap.add_argument("--models", required=True, help="folder with vit_{tiny,base}_patch16_224.ovit")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print("| model | batch | threads | streams | emulated ms | efficiency |")
    print("|---|---|---|---|---|---|")
    for size, batch, threads, streams in ROWS:
        model = os.path.join(args.models, f"vit_{size}_patch16_224.ovit")
        e = emulate(args.onevit, model, batch, threads // streams, args.runs)
        name = {"base": "ViT-B/16", "tiny": "ViT-Ti/16"}[size]
        print(f"| {name} | {batch} | {threads} | {streams} | {e['latency_ms']:.2f} | {e['efficiency']:.2f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
