#!/usr/bin/python3
"""Two or more onevit builds against each other, interleaved: `onevit bench --json` per cell.

    bench/ab_bench.py --bin before=/path/onevit --bin after=build/apps/onevit \\
        --model ti=vit_ti.ovit --model b=vit_b.ovit --precision f32,bf16,int8 --batch 1,8 --rounds 3

Each round runs every (model, precision, batch) cell once per binary, the binaries next to each
other, so that a slow spell of the machine hits them alike; a cell's figure is its median over the
rounds. Prints per cell each binary's median latency (ms), images/s and efficiency (GFLOP/s ÷ that
command's own matmul peak), and each binary's images/s as a ratio to the first binary's. JSON lines
(one per run) go to --out when given. Uses only the standard library and the binaries.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys


def named(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, value


def run_cell(binary: str, model: str, precision: str, batch: int, args) -> dict:
    command = [binary, "bench", "--model", model, "--precision", precision, "--batch", str(batch),
               "--threads", str(args.threads), "--hint", args.hint, "--iters", str(args.iters),
               "--warmup", str(args.warmup), "--max-seconds", str(args.max_seconds), "--json"]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except OSError as e:
        sys.exit(f"ab_bench.py: error: {binary}: {e.strerror}")
    if result.returncode != 0:
        sys.exit(f"ab_bench.py: error: {' '.join(command)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", type=named, action="append", required=True, help="NAME=PATH of an onevit binary")
    parser.add_argument("--model", type=named, action="append", required=True, help="NAME=PATH of a .ovit file")
    parser.add_argument("--precision", default="f32", help="comma-separated (default f32)")
    parser.add_argument("--batch", default="1", help="comma-separated batch sizes (default 1)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hint", choices=["latency", "throughput"], default="latency",
                        help="throughput: the streams each binary's thread plan picks (images/s of them all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=2.0)
    parser.add_argument("--out", help="append one JSON line per run to this file")
    args = parser.parse_args()
    precisions = args.precision.split(",")
    batches = [int(b) for b in args.batch.split(",")]
    cells = [(m, p, b) for m in args.model for p in precisions for b in batches]
    runs: dict[tuple, list[dict]] = {}
    out = open(args.out, "a") if args.out else None
    for r in range(args.rounds):
        for (model_name, model_path), precision, batch in cells:
            for bin_name, bin_path in args.bin:
                report = run_cell(bin_path, model_path, precision, batch, args)
                runs.setdefault((model_name, precision, batch, bin_name), []).append(report)
                if out:
                    out.write(json.dumps({"round": r, "bin": bin_name, "model_name": model_name, **report}) + "\n")
                    out.flush()
        print(f"round {r + 1} of {args.rounds} done", file=sys.stderr)
    first = args.bin[0][0]
    print(f"{'model':<10} {'prec':<5} {'b':>2}  {'binary':<10} {'ms':>9} {'img/s':>8} {'eff':>6} {'x ' + first:>9}")
    for (model_name, _), precision, batch in cells:
        base = None
        for bin_name, _ in args.bin:
            reports = runs[(model_name, precision, batch, bin_name)]
            ms = statistics.median(x["latency_ms_median"] for x in reports)
            ips = statistics.median(x["images_per_s"] for x in reports)
            eff = statistics.median(x["efficiency"] for x in reports)
            base = ips if base is None else base
            print(f"{model_name:<10} {precision:<5} {batch:>2}  {bin_name:<10} {ms:9.2f} {ips:8.2f} {eff:6.3f} "
                  f"{ips / base:9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
