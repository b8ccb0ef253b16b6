#!/usr/bin/python3
"""The 2025-26 ViT layouts (issue 20) against timm's own forward: tests/fixtures/modern/.

Each fixture (tests/fixtures/make_modern_fixtures.py) is a small random model built by timm
itself — EVA-01/02 and their CLIP towers, timm's RoPE ViTs (axial, mixed, with an absolute
table, registers), DINOv3 (plain and SwiGLU), Perception Encoder, DINOv2-giant's packed
SwiGLU, AIMv2, BEiT-3, parallel, parallel-scaling and post-norm blocks — with timm's
config.json export and timm's float64 logits and embeddings at batch 1 and 3. For each:

  1. the contract: convert.py (in this process, every model-file feature allowed) writes the
     file, and the forward pass the file describes (tests/reference/ovit_v2_reference.py,
     written from FORMAT.md and notes/format-v2.md) must give timm's outputs — this proves the
     converter's mapping whatever the engine runs;
  2. the product: `weights/convert.py --config config.json` as users run it. Either it
     converts, and `onevit infer` must give timm's outputs, or it refuses with one error line
     that names only features of the variant's list (expect.json, written from timm's
     registration, not by the converter): the variant is pending on those features.
Bound: max|Δ| ≤ 1e-4 × max(1, max|timm|), per output. With --precision bf16 or int8, step 2 only,
at 3e-2 or 1e-1 × max(1, max|timm|) (REL_TOLS), and no oneDNN primitive may be a reference
implementation (ONEDNN_VERBOSE=2; `ref...`: oneDNN's slow fallback loops).

Usage: /usr/bin/python3 tests/modern_test.py --onevit build/apps/onevit [--variants a,b] [--precision P] [--keep]
Exit status: 0 pass, 1 a comparison failed, 2 a tool failed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import BF16_REL_TOL, REL_TOL, TOOL_ENV, argument_parser, exit_status, onednn_implementations, \
    parity, report, resolve_converter, resolve_onevit, run_tool, scratch_dir  # noqa: E402

import numpy as np  # noqa: E402

import every_feature  # noqa: E402
import ovit_v2_reference  # noqa: E402
from vit_reference import read_ovit  # noqa: E402

FIXTURES = os.path.join(HERE, "fixtures", "modern")
BATCHES = (1, 3)
OUTPUTS = ("logits", "embedding")
# At bf16 and int8 these 48-wide, 2-block models are noisier than the 192-768-wide ones of parity_test:
# bf16, 2.0e-2 (rope-axial), where numpy rounding at the engine's bf16 points gives 1.2-1.5e-2; int8,
# up to 6.9e-2, as parity_test's random ViT-Ti/S/B at int8 (5.5-7.8e-2). A wrong layer is O(1).
REL_TOLS = {"f32": REL_TOL, "bf16": 1.5 * BF16_REL_TOL, "int8": 1e-1}
ONEDNN_VERBOSE = dict(TOOL_ENV, ONEDNN_VERBOSE="2")  # lists every primitive created, and its implementation


def fixtures():
    return sorted(d for d in os.listdir(FIXTURES) if os.path.isfile(os.path.join(FIXTURES, d, "expect.json")))


def load(variant, name):
    return np.load(os.path.join(FIXTURES, variant, name))


def compare(variant, what, batch, got, failures, rows, rel_tol=REL_TOL):
    for output in OUTPUTS:
        want = load(variant, f"{output}_b{batch}.npy").astype(np.float64)
        if got[output].shape != want.shape:
            failures.append(f"{variant} {what} batch {batch} {output}: shape {got[output].shape}, timm {want.shape}")
            continue
        p = parity(got[output], want, rel_tol)
        rows.append(f"{variant:<34}{what:<9}{batch:>5}  {output:<10}{p.ref_max:>9.3f}{p.diff:>11.2e}  "
                    f"{'ok' if p.ok else 'FAIL'}")
        if not p.ok:
            failures.append(f"{variant} {what} batch {batch} {output}: max|Δ| {p.diff:.3e} > {p.tol:.3e}; {p.worst}")


def main(argv=None) -> int:
    ap = argument_parser("the 2025-26 ViT layouts against timm's forward", keep=True)
    ap.add_argument("--variants", help="comma list (default: all in tests/fixtures/modern)")
    ap.add_argument("--precision", default="f32", choices=tuple(REL_TOLS), help="onevit infer --precision")
    args = ap.parse_args(argv)
    rel_tol = REL_TOLS[args.precision]
    onevit = resolve_onevit(args.onevit, args.repo)
    convert = resolve_converter(args.repo)
    names = args.variants.split(",") if args.variants else fixtures()
    failures, rows, pending, runs, impls = [], [], [], [], set()
    with scratch_dir("onevit_modern_", args.keep) as tmp:
        for variant in names:
            d = os.path.join(FIXTURES, variant)
            with open(os.path.join(d, "expect.json")) as f:
                expect = json.load(f)
            ckpt, config = os.path.join(d, "model.safetensors"), os.path.join(d, "config.json")

            if args.precision == "f32":  # the contract is the file's, whatever the engine computes in
                check_contract(args.repo, variant, expect, ckpt, config, tmp, failures, rows)

            model = os.path.join(tmp, f"{variant}.ovit")
            proc = subprocess.run([sys.executable, convert, ckpt, "--config", config, "-o", model],
                                  capture_output=True, text=True, env=TOOL_ENV)
            if proc.returncode:
                named = set(re.findall(r"\b([a-z_]+) \(", proc.stderr)) & set(FEATURE_NAMES)
                lines = [line for line in proc.stderr.splitlines() if line.strip()]
                if len(lines) != 1 or not named or not named <= set(expect["features"]):
                    failures.append(f"{variant}: refused without naming only its features "
                                    f"{expect['features']}: {proc.stderr.strip()}")
                pending.append(f"{variant}: pending on {', '.join(sorted(named)) or '?'}")
                continue
            runs.append(variant)
            for batch in BATCHES:
                paths = {k: os.path.join(tmp, f"{variant}_{batch}_{k}.npy") for k in ("input", *OUTPUTS)}
                np.save(paths["input"], load(variant, f"input_b{batch}.npy"))
                out = run_tool([onevit, "infer", "--model", model, "--input", paths["input"], "--output",
                                paths["logits"], "--embedding", paths["embedding"], "--precision", args.precision],
                               "onevit infer", env=ONEDNN_VERBOSE)
                refs = {i for i in onednn_implementations(out)[1] if i.split(" ")[1].startswith("ref")}
                if refs:
                    failures.append(f"{variant} batch {batch}: oneDNN reference implementations: {sorted(refs)}")
                impls |= refs
                compare(variant, "onevit", batch, {k: np.load(paths[k]).astype(np.float64) for k in OUTPUTS},
                        failures, rows, rel_tol)
    print(f"--precision {args.precision}, tolerance: max|Δ| ≤ {rel_tol:g} × max(1, max|timm|), timm's float64 "
          f"forward; oneDNN reference implementations created: {sorted(impls) or 'none'}")
    print(f"{'variant':<34}{'what':<9}{'batch':>5}  {'output':<10}{'max|ref|':>9}{'max|Δ|':>11}  result")
    print("\n".join(rows))
    print("\n".join(pending))
    contract = "the contract at parity for all, " if args.precision == "f32" else ""
    return report(failures, "modern ViT layouts differ from timm",
                  f"{len(names)} variants at --precision {args.precision}: {contract}onevit at parity for "
                  f"{len(runs)} ({', '.join(runs) or 'none'}), {len(pending)} pending on engine features")


def check_contract(repo, variant, expect, ckpt, config, tmp, failures, rows):
    """The file convert.py writes with every feature allowed, run by the format's reference forward."""
    contract = os.path.join(tmp, f"{variant}.contract.ovit")
    code, err = every_feature.convert(repo, [ckpt, "--config", config, "-o", contract])
    if code:
        failures.append(f"{variant}: not convertible even with every feature allowed: {err.strip()}")
        return
    meta, tensors = read_ovit(contract)
    written = sorted(meta.get("arch.features", []))
    if written != sorted(expect["features"]):
        failures.append(f"{variant}: the file names features {written}, timm's {expect['architecture']} "
                        f"needs {sorted(expect['features'])}")
    for batch in BATCHES:
        got = ovit_v2_reference.forward(meta, tensors, load(variant, f"input_b{batch}.npy"))
        compare(variant, "contract", batch, got, failures, rows)


FEATURE_NAMES = ("rms_norm", "embed_norm", "no_pos_embed", "qk_norm", "rope", "attn_norm", "swiglu", "mlp_norm",
                 "post_norm", "parallel", "rel_pos_bias", "attn_pool_shape")

if __name__ == "__main__":
    sys.exit(exit_status(main))
