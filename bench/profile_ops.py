#!/usr/bin/python3
"""Per-op time breakdown of a whole-model forward pass, from oneDNN's verbose log.

    /usr/bin/python3 bench/profile_ops.py --onevit build/apps/onevit \\
        --model bench/models/vit_base_patch16_224.ovit [--threads 2] [--batch 1] \\
        [--precision f32|bf16|int8] [--iters 10] [--warmup 2] [--json]

Runs `onevit bench` twice on the model: once plain, for the wall latency, and once
with ONEDNN_VERBOSE=1, whose `onednn_verbose,exec,...` lines give every primitive
execution's kind, implementation, problem shape and time. The load's reorders (weight
layouts) are dropped, as are the trailing matmul-peak probe of `onevit bench`
(the 1576x768:768x3072 matmuls after the last forward), the first forward after
loading and the warm-up forwards;
what is left is grouped by (primitive, implementation, shape) and shown per timed
forward: milliseconds, share of all primitive time, calls, and GFLOP/s for matmuls
(MxK:KxN is 2·M·K·N FLOPs, times any batch dimensions) and convolutions.

Each execution runs on one thread (the engine tiles the work), so with T threads the
primitive times add up to about T times the wall time: "per thread" (the sum / T)
is the figure comparable with the wall latency, and wall − sum/T is the time spent
outside every primitive (scheduling, barriers between phases, token assembly,
pooling — and, on a busy machine, time the threads were not running at all). GFLOP/s per group are thus single-core rates. The verbose run is slower
(each execution also prints a line), so the outside share is taken against the
plain run's wall latency; the verbose run's own is shown as well.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "reference"))
from harness import REPO, ToolError, exit_status, resolve_onevit  # noqa: E402

PROBE_SHAPE = "1576x768:768x3072"  # measure.cpp's matmul_peak_gflops, run after the forwards


def run_bench(onevit: str, args, verbose: bool) -> tuple[dict, list[str]]:
    """The bench --json report and (verbose) the oneDNN exec lines, in order."""
    env = dict(os.environ)
    env.pop("DNNL_VERBOSE", None)
    env["ONEDNN_VERBOSE"] = "1" if verbose else "0"
    env.pop("ONEDNN_VERBOSE_TIMESTAMP", None)  # keeps the field positions fixed
    # --max-seconds: run every --iters forward, so the log holds a known count.
    cmd = [onevit, "bench", "--model", args.model, "--threads", str(args.threads), "--batch", str(args.batch),
           "--precision", args.precision, "--iters", str(args.iters), "--warmup", str(args.warmup),
           "--max-seconds", "1e6", "--json"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise ToolError(f"onevit bench failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-4000:]}")
    lines = proc.stdout.splitlines()
    report = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
    execs = [line for line in lines if line.startswith(("onednn_verbose,exec,", "dnnl_verbose,exec,"))]
    return report, execs


def parse_exec(line: str) -> tuple[str, str, str, float]:
    """(primitive, impl, problem shape, ms) of `<marker>,exec,cpu,<primitive>,<impl>,...,<problem>,<ms>`."""
    fields = line.split(",")
    return fields[3], fields[4], fields[-2], float(fields[-1])


def dims(text: str) -> list[int]:
    return [int(d) for d in text.split("x")]


def flops(primitive: str, shape: str) -> float | None:
    """FLOPs of one execution, where the problem shape tells them."""
    if primitive == "matmul":
        src, wei = (dims(part) for part in shape.split(":")[:2])
        batch = math.prod(max(a, b) for a, b in zip(src[:-2], wei[:-2]))  # broadcast batch dims
        return 2.0 * batch * src[-2] * src[-1] * wei[-1]
    if primitive == "convolution":  # e.g. mb1_ic3oc96_ih224oh14kh16sh16dh0ph0_iw224ow14kw16...
        v = {k: int(n) for k, n in re.findall(r"([a-z]+?)(\d+)", shape)}
        oh, kh = v["oh"], v["kh"]
        return 2.0 * v["mb"] * v["oc"] * oh * v.get("ow", oh) * (v["ic"] // v.get("g", 1)) * kh * v.get("kw", kh)
    return None


def timed_executions(execs: list[str], report: dict) -> list[tuple[str, str, str, float]]:
    """The executions of the timed forwards: no load-time reorders, no peak probe, no warm-up."""
    parsed = [parse_exec(line) for line in execs]
    while parsed and parsed[-1][0] == "matmul" and parsed[-1][2].startswith(PROBE_SHAPE):
        parsed.pop()
    # Loading reorders the weights; every forward then starts with the reorders of
    # its input (NCHW to NHWC): dropping all leading reorders drops the load's and
    # those of the first forward, which is not timed anyway.
    first_compute = next((i for i, p in enumerate(parsed) if p[0] != "reorder"), len(parsed))
    parsed = parsed[first_compute:]
    # Forwards run one after another (a request per stream at a time): the first
    # result right after loading, the warm-up, then the timed ones.
    timed = report["iterations"]
    forwards = 1 + report["warmup"] * report["streams"] + timed
    per_forward = -(-len(parsed) // forwards)
    leading_reorders_dropped = per_forward * forwards - len(parsed)
    if not 0 <= leading_reorders_dropped < per_forward:
        print(f"warning: {len(parsed)} executions do not split into {forwards} forwards", file=sys.stderr)
    return parsed[len(parsed) - per_forward * timed:]


def profile(plain: dict, verbose: dict, executions) -> dict:
    forwards = verbose["iterations"]
    threads = verbose["threads"]
    groups = defaultdict(lambda: [0.0, 0])  # (primitive, impl, shape) -> [ms, calls]
    for primitive, impl, shape, ms in executions:
        groups[(primitive, impl, shape)][0] += ms
        groups[(primitive, impl, shape)][1] += 1
    total_ms = sum(ms for ms, _ in groups.values())
    rows = []
    for (primitive, impl, shape), (ms, calls) in sorted(groups.items(), key=lambda g: -g[1][0]):
        f = flops(primitive, shape)
        rows.append({"primitive": primitive, "impl": impl, "shape": shape, "ms_per_forward": ms / forwards,
                     "percent": 100 * ms / total_ms, "calls_per_forward": calls / forwards,
                     "gflops_per_thread": f * calls / (ms / 1e3) / 1e9 if f and ms > 0 else None})
    per_forward = total_ms / forwards
    return {
        "model": plain["model"], "batch": plain["batch"], "threads": threads, "warmup": verbose["warmup"],
        "timed_forwards": forwards,
        "wall_ms": plain["latency_ms_median"], "wall_ms_verbose": verbose["latency_ms_median"],
        "primitive_ms_per_forward": per_forward, "primitive_ms_per_forward_per_thread": per_forward / threads,
        "outside_share": 1 - per_forward / threads / plain["latency_ms_median"],
        "outside_share_verbose": 1 - per_forward / threads / verbose["latency_ms_median"],
        "groups": rows,
    }


def print_profile(p: dict, top: int) -> None:
    print(f"model {p['model']}  batch {p['batch']}  threads {p['threads']}  "
          f"({p['timed_forwards']} timed forwards after {p['warmup']} warm-up)")
    by_kind = defaultdict(float)
    for g in p["groups"]:
        by_kind[g["primitive"]] += g["percent"]
    print("by primitive: " + ", ".join(f"{k} {v:.1f}%" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])))
    print(f"\n{'primitive':<20}{'impl':<32}{'shape':<44}{'ms/fwd':>9}{'%':>7}{'calls':>8}{'GFLOP/s/thr':>12}")
    for g in p["groups"][:top]:
        gflops = f"{g['gflops_per_thread']:.1f}" if g["gflops_per_thread"] else "-"
        print(f"{g['primitive']:<20}{g['impl']:<32}{g['shape'][:43]:<44}{g['ms_per_forward']:>9.3f}"
              f"{g['percent']:>7.1f}{g['calls_per_forward']:>8.1f}{gflops:>12}")
    if len(p["groups"]) > top:
        rest = p["groups"][top:]
        print(f"({len(rest)} more groups, {sum(g['percent'] for g in rest):.1f}% together; --top N for more)")
    print(f"\nprimitive time per forward: {p['primitive_ms_per_forward']:.2f} ms summed over threads, "
          f"{p['primitive_ms_per_forward_per_thread']:.2f} ms per thread (/ {p['threads']})")
    print(f"wall latency (bench median): {p['wall_ms']:.2f} ms; under verbose {p['wall_ms_verbose']:.2f} ms")
    print(f"outside any primitive: {100 * p['outside_share']:.1f}% of wall "
          f"({100 * p['outside_share_verbose']:.1f}% of the verbose run's wall, which includes the logging)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onevit", help="the onevit binary (default: $ONEVIT_BIN, else build/apps/onevit)")
    ap.add_argument("--model", required=True, help="a .ovit file")
    ap.add_argument("--threads", type=int, default=0, help="threads, 0 = all cores (default 0)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--precision", default="f32", help="onevit bench --precision (default f32)")
    ap.add_argument("--iters", type=int, default=10, help="timed forwards (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed forwards first (default 2)")
    ap.add_argument("--top", type=int, default=25, help="groups to print, largest first (default 25)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    args = ap.parse_args(argv)
    onevit = resolve_onevit(args.onevit, REPO)

    plain, _ = run_bench(onevit, args, verbose=False)
    verbose, execs = run_bench(onevit, args, verbose=True)
    p = profile(plain, verbose, timed_executions(execs, verbose))
    if args.json:
        print(json.dumps(p))
    else:
        print_profile(p, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
