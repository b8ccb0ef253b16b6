#!/usr/bin/python3
"""Per-op CPU time of a ViT forward against each op's floor, from `onevit bench --emulate-threads T --json`.

    bench/op_breakdown.py --bin main=build/apps/onevit [--bin other=/path/onevit] \\
        --model ti=vit_ti16.ovit --model s=vit_s16.ovit --precision f32,bf16,int8 --batch 8 \\
        [--threads 2] [--rounds 3] [--iters 5] [--out runs.jsonl]

The emulated run times every op inside its chain of row tiles (so its rows come from the
cache as in a real run) in one thread's CPU time, each op at its fastest over --iters runs;
this adds the ops of every block together by kind (`blocks.3.mlp.fc1` → `mlp.fc1`) and gives
milliseconds per image. Rounds interleave the cells and binaries; each figure is the median
over the rounds. Floors, per image:
- matmuls (qkv, proj, fc1, fc2, patch embedding, head) and attention's two products:
  2·M·K·N FLOPs at the matmul peak of their data type that the same command measured
  (`peak_gflops_per_thread`; f32 and bf16 peaks from the f32 and bf16 cells), so an op's
  epilogue (GELU, residual add, int8 scales, stores) shows as its excess over the floor;
- row loops (norms, conversions, tokens, patch extraction): the bytes they read and write at
  --copy-gbs, one core's copy rate for buffers that fit its L2 or L3 (memcpy of 96 KB–4 MB,
  2026-12-06: 95–114 GB/s read + write).
Prints one table per cell: each op kind's ms per image, its share, floor and ratio to it, and
with several binaries each one's time ÷ the first's.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from collections import defaultdict

BYTES = {"f32": 4, "bf16": 2, "int8": 1}


def named(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, value


def run(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except OSError as e:
        sys.exit(f"op_breakdown.py: error: {command[0]}: {e.strerror}")
    if result.returncode != 0:
        sys.exit(f"op_breakdown.py: error: {' '.join(command)} failed: {result.stderr.strip()}")
    return result.stdout


def architecture(binary: str, model: str) -> dict:
    text = run([binary, "info", model])
    field = lambda name: int(re.search(rf"^\s+{name}\s+(\d+)", text, re.M).group(1))  # noqa: E731
    size = re.search(r"image size\s+(\d+) x (\d+)", text)
    a = {k.replace(" ", "_"): field(k) for k in ("dim", "depth", "heads", "head dim", "mlp dim", "classes",
                                                   "prefix tokens", "patch size", "channels")}
    a["patches"] = (int(size.group(1)) // a["patch_size"]) * (int(size.group(2)) // a["patch_size"])
    a["pixels"] = int(size.group(1)) * int(size.group(2)) * a["channels"]
    a["tokens"] = a["patches"] + a["prefix_tokens"]
    return a


def kind_of(op: str) -> str:
    return re.sub(r"^blocks\.\d+\.", "", op)


def per_image_ms(report: dict) -> dict[str, float]:
    ms: dict[str, float] = defaultdict(float)
    for phase in report["phases"]:
        for op, t in phase["op_ms"].items():
            ms[kind_of(op)] += t / report["batch"]
    return ms


def floors(a: dict, precision: str, peaks: dict[str, float], copy_gbs: float) -> dict[str, float]:
    """Each op kind's floor in ms per image (None where its peak is unknown)."""
    T, D, I, M, L = a["tokens"], a["dim"], a["heads"] * a["head_dim"], a["mlp_dim"], a["depth"]
    P = a["patch_size"] ** 2 * a["channels"]
    low = {"f32": "f32", "bf16": "bf16", "int8": "int8"}[precision]
    normed = BYTES[low]

    def mm(flops: float, dtype: str) -> float | None:
        return flops / (peaks[dtype] * 1e6) if dtype in peaks else None

    def mem(nbytes: float) -> float:
        return nbytes / (copy_gbs * 1e6)

    patch_type = "bf16" if precision == "int8" else "f32"
    return {
        "patch extraction": mem(a["pixels"] * 4 + a["patches"] * P * BYTES[patch_type]),
        "patch embedding": mm(2 * a["patches"] * P * D, patch_type),
        "tokens": mem(a["patches"] * D * 4 + 2 * T * D * 4),
        "norm1": L * mem(T * D * (4 + normed)),
        "norm2": L * mem(T * D * (4 + normed)),
        "attn.qkv": L * mm(2 * T * D * 3 * I, low),
        "attention": L * mm(4 * T * T * I, low),
        "attn.proj input": L * mem(T * I * (2 + 1)),  # int8: bf16 attention output → s8
        "attn.proj": L * mm(2 * T * I * D, low),
        "mlp.fc1": L * mm(2 * T * D * M, low),
        "mlp.fc2 input": L * mem(T * M * (2 + 1)),  # where fc1 cannot quantize its own rows
        "mlp.fc2": L * mm(2 * T * M * D, low),
        "norm": mem(T * D * 8),
        "pool": mem(D * 8),
        "head": mm(2 * D * a["classes"], "f32"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", type=named, action="append", required=True, help="NAME=PATH of an onevit binary")
    parser.add_argument("--model", type=named, action="append", required=True, help="NAME=PATH of a .ovit file")
    parser.add_argument("--precision", default="f32,bf16,int8", help="comma-separated (default f32,bf16,int8)")
    parser.add_argument("--batch", default="8", help="comma-separated batch sizes (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="the plan's threads, emulated on one (default 2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=5, help="runs per command; each op at its fastest")
    parser.add_argument("--copy-gbs", type=float, default=100.0, help="the row loops' floor: GB/s read + written")
    parser.add_argument("--out", help="append one JSON line per run to this file")
    args = parser.parse_args()
    precisions = args.precision.split(",")
    batches = [int(b) for b in args.batch.split(",")]
    cells = [(m, p, b) for m in args.model for p in precisions for b in batches]
    arch = {name: architecture(args.bin[0][1], path) for name, path in args.model}
    runs: dict[tuple, list[dict]] = defaultdict(list)
    out = open(args.out, "a") if args.out else None
    for r in range(args.rounds):
        for (model_name, model_path), precision, batch in cells:
            for bin_name, bin_path in args.bin:
                report = json.loads(run([bin_path, "bench", "--model", model_path, "--precision", precision,
                                         "--batch", str(batch), "--emulate-threads", str(args.threads),
                                         "--iters", str(args.iters), "--json"]))
                runs[(model_name, precision, batch, bin_name)].append(report)
                if out:
                    out.write(json.dumps({"round": r, "bin": bin_name, "model_name": model_name, **report}) + "\n")
                    out.flush()
        print(f"round {r + 1} of {args.rounds} done", file=sys.stderr)

    first = args.bin[0][0]
    peaks = {p: statistics.median(x["peak_gflops_per_thread"] for k, v in runs.items() if k[1] == p for x in v)
             for p in precisions}
    for (model_name, _), precision, batch in cells:
        floor = floors(arch[model_name], precision, peaks, args.copy_gbs)
        medians = {}
        for bin_name, _ in args.bin:
            per_run = [per_image_ms(x) for x in runs[(model_name, precision, batch, bin_name)]]
            kinds = {k for ms in per_run for k in ms}
            medians[bin_name] = {k: statistics.median(ms.get(k, 0.0) for ms in per_run) for k in kinds}
        base = medians[first]
        total = sum(base.values())
        print(f"\n{model_name} {precision} batch {batch}, {args.threads}-thread plan, one core's CPU ms per image "
              f"(medians of {args.rounds} rounds)")
        header = f"| op | {first} ms | share | floor ms | × floor |"
        header += "".join(f" {b} ÷ {first} |" for b, _ in args.bin[1:])
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        order = sorted(base, key=lambda k: -base[k])
        for k in order + ["total"]:
            ms = total if k == "total" else base[k]
            f = sum(floor[j] for j in base if floor.get(j)) if k == "total" else floor.get(k)
            line = f"| {k} | {ms:.3f} | {100 * ms / total:.1f} % | " + (f"{f:.3f} | {ms / f:.2f} |" if f else "— | — |")
            for b, _ in args.bin[1:]:
                other = sum(medians[b].values()) if k == "total" else medians[b].get(k, 0.0)
                line += f" {other / ms:.3f} |" if ms else " — |"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
