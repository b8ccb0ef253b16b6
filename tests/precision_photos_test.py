#!/usr/bin/python3
"""bf16 and int8 against f32 on real photos through the pretrained DeiT-tiny.

    weights/convert.py model.safetensors --arch deit_tiny_patch16_224 -o deit.ovit
    onevit classify --model deit.ovit --json --precision P <every photo under images/>, P = f32, bf16, int8

Checks: top-1 agreement with f32 of at least 98 % at bf16 and 95 % at int8 (the
accuracy targets of issue 11; with the 18 photos there, every photo must agree);
and, from ONEDNN_VERBOSE=2, that no primitive created at any precision is a
reference implementation (`ref...`: oneDNN's slow fallback loops).

Usage:
    /usr/bin/python3 tests/precision_photos_test.py --onevit build/apps/onevit [--data DIR]
Exit status: 0 pass, 1 a check failed, 2 a tool failed, 77 data not found (skip).
"""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import (TOOL_ENV, ToolError, argument_parser, classify_json, exit_status,  # noqa: E402
                     onednn_implementations, report, resolve_converter, resolve_onevit, run_tool, scratch_dir)
from shared_photos import SKIP, add_data_argument, data_dir, find_photos  # noqa: E402

MIN_AGREEMENT = {"bf16": 0.98, "int8": 0.95}


def classify(onevit: str, ovit: str, precision: str, photos: list[str]) -> tuple[str, list[str]]:
    """classify --json output, and the implementations of the primitives it created."""
    env = dict(TOOL_ENV, ONEDNN_VERBOSE="2")
    proc = subprocess.run([onevit, "classify", "--model", ovit, "--top", "1", "--json", "--precision", precision]
                          + photos, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise ToolError(f"onevit classify --precision {precision} failed: {proc.stderr.strip()[:500]}")
    return onednn_implementations(proc.stdout)


def main(argv=None) -> int:
    ap = argument_parser("DeiT-tiny on real photos: bf16 and int8 vs. f32", keep=True)
    add_data_argument(ap)
    args = ap.parse_args(argv)

    repo = os.path.abspath(args.repo)
    data = data_dir(args, repo)
    ckpt = os.path.join(data, "deit_tiny_patch16_224", "model.safetensors")
    image_dir = os.path.join(data, "images")
    if not os.path.exists(ckpt) or not os.path.isdir(image_dir) or not find_photos(image_dir):
        print(f"SKIP: shared data not found under {data}")
        return SKIP
    onevit = resolve_onevit(args.onevit, repo)
    convert = resolve_converter(repo)
    photos = find_photos(image_dir)

    failures, top1 = [], {}
    with scratch_dir("onevit_precision_", args.keep) as tmp:
        ovit = os.path.join(tmp, "deit_tiny.ovit")
        run_tool([sys.executable, convert, ckpt, "--arch", "deit_tiny_patch16_224", "-o", ovit], "convert.py")
        for precision in ("f32", "bf16", "int8"):
            out, impls = classify(onevit, ovit, precision, photos)
            results = classify_json(out, failures, photos)
            top1[precision] = [results[p][0]["index"] if p in results else None for p in photos]
            refs = sorted({i for i in impls if i.split(" ")[1].startswith("ref")})
            print(f"{precision}: {len(impls)} primitives created, reference implementations: {refs or 'none'}")
            if refs:
                failures.append(f"{precision}: oneDNN reference implementations created: {refs}")

    for precision, minimum in MIN_AGREEMENT.items():
        agree = sum(a == b and a is not None for a, b in zip(top1[precision], top1["f32"]))
        share = agree / len(photos)
        print(f"{precision}: top-1 agrees with f32 on {agree}/{len(photos)} photos ({100 * share:.1f} %, "
              f"at least {100 * minimum:.0f} % required)")
        if share < minimum:
            differing = [os.path.relpath(p, image_dir) for p, a, b in zip(photos, top1[precision], top1["f32"])
                         if a != b]
            failures.append(f"{precision}: top-1 agreement {100 * share:.1f} % < {100 * minimum:.0f} % "
                            f"(differs on {differing})")
    return report(failures, "bf16/int8 disagree with f32 on DeiT-tiny",
                  f"{len(photos)} photos: bf16 and int8 agree with f32 as required, no reference kernels")


if __name__ == "__main__":
    sys.exit(exit_status(main))
