#!/usr/bin/python3
"""Logit parity: onevit vs. an independent float64 PyTorch ViT, ViT-Ti/S/B at 224.

For each of ViT-Ti/16, ViT-S/16 and ViT-B/16 (timm naming, fixed-seed random
weights scaled so that attention is far from uniform, the GELU nonlinearity
matters and the logits have realistic magnitude, |logit| ~ 10):

  1. write the state dict as safetensors,
  2. `weights/convert.py CKPT --arch vit_{tiny,small,base}_patch16_224 -o M.ovit`,
  3. check the .ovit against the checkpoint (metadata; tensors bit-identical),
  4. `onevit infer --model M.ovit` on random NCHW input, batch 1 and 3,
  5. compare with tests/reference/vit_reference.py run in float64:
     max|Δ| ≤ 1e-4 × max(1, max|reference logit|); with --precision bf16,
     onevit computes in bf16 and the bound is bf16_rel_tol(depth) × max(1,
     max|reference logit|): 4.7e-2 at depth 12 (see bf16_rel_tol).

The "erf/tanh gap" column is how far the reference moves when exact GELU is
replaced by the tanh approximation: it shows the tolerance is tight enough to
see a change of that size.

Usage:
    /usr/bin/python3 tests/parity_test.py --onevit build/apps/onevit
    ONEVIT_BIN=build/apps/onevit /usr/bin/python3 tests/parity_test.py [--models tiny,small]
Exit status: 0 pass, 1 a comparison failed, 2 a tool (converter, onevit) failed.
"""

from __future__ import annotations

import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import (REL_TOL, argument_parser, exit_status, parity, report,  # noqa: E402
                     resolve_converter, resolve_onevit, run_tool, scratch_dir,
                     set_torch_threads)  # before torch

import numpy as np  # noqa: E402
import torch  # noqa: E402

from random_vit import random_vit_state  # noqa: E402
import safetensors_io  # noqa: E402
import vit_reference  # noqa: E402


# name -> (timm arch, embed dim, depth, heads)
MODELS = {
    "tiny": ("vit_tiny_patch16_224", 192, 12, 3),
    "small": ("vit_small_patch16_224", 384, 12, 6),
    "base": ("vit_base_patch16_224", 768, 12, 12),
}
NUM_CLASSES = 1000
SEED = 20240611
BF16_UNIT_ROUNDOFF = 2.0 ** -8  # 8 significant bits, rounded to nearest
BF16_ROUNDINGS_PER_BLOCK = 12


def bf16_rel_tol(depth: int) -> float:
    """The bf16 bound relative to max(1, max|logit|): the size of a random walk of the
    roundings on every path to a logit, u·sqrt(n) (Higham & Mary's probabilistic rounding
    error analysis). Each block rounds 12 things to bf16 on every path: 8 activations
    (norm1's output, q, k, v, the probabilities, attention's output, norm2's output, the
    MLP hidden) and 4 weights (qkv, proj, fc1, fc2), each off by at most u relative and
    independently of the others. Depth 12: 12u = 4.7e-2. Measured at bf16 on these random
    ViTs: 0.95-2.2e-2; at int8 (per-row s8, not this test's): 5.5-7.8e-2, past it."""
    return BF16_UNIT_ROUNDOFF * math.sqrt(BF16_ROUNDINGS_PER_BLOCK * depth)


def check_ovit(path: str, state: dict, cfg: vit_reference.ViTConfig) -> list[str]:
    """Differences between a converted .ovit and the checkpoint it came from."""
    problems = []
    meta, tensors = vit_reference.read_ovit(path)
    got_cfg, got_sd = vit_reference.timm_state_from_ovit(meta, tensors)
    want = {"image_size": tuple(cfg.image_size), "patch_size": cfg.patch_size,
            "in_chans": cfg.in_chans, "embed_dim": cfg.embed_dim, "depth": cfg.depth,
            "num_heads": cfg.num_heads, "head_dim": cfg.resolved_head_dim, "mlp_dim": cfg.mlp_dim,
            "num_classes": cfg.num_classes, "gelu": cfg.gelu, "qkv_bias": cfg.qkv_bias,
            "distilled": cfg.distilled, "final_norm": cfg.final_norm}
    for key, value in want.items():
        got = getattr(got_cfg, key)
        if (tuple(got) if isinstance(got, (list, tuple)) else got) != value:
            problems.append(f"metadata {key}: {got!r}, expected {value!r}")
    if abs(got_cfg.eps - cfg.eps) > 1e-3 * cfg.eps:
        problems.append(f"metadata norm_eps: {got_cfg.eps!r}, expected {cfg.eps!r}")
    scale = cfg.resolved_head_dim ** -0.5
    if abs(got_cfg.attn_scale - scale) > 1e-6 * scale:
        problems.append(f"metadata attn_scale: {got_cfg.attn_scale!r}, expected {scale!r}")
    if set(got_sd) != set(state):
        problems.append(f"tensor names differ: missing {sorted(set(state) - set(got_sd))}, "
                        f"extra {sorted(set(got_sd) - set(state))}")
    for name in sorted(set(got_sd) & set(state)):
        a, b = got_sd[name].numpy(), np.asarray(state[name])
        if a.shape != b.shape or not np.array_equal(a, b):
            problems.append(f"tensor {name}: not bit-identical to the checkpoint "
                            f"(shape {a.shape} vs {b.shape})")
    return problems


def main(argv=None) -> int:
    ap = argument_parser("onevit vs. PyTorch reference logit parity", keep=True)
    ap.add_argument("--models", default="tiny,small,base", help="comma list of tiny,small,base")
    ap.add_argument("--batches", default="1,3", help="comma list of batch sizes")
    ap.add_argument("--precision", default="f32", choices=("f32", "bf16"), help="onevit infer --precision")
    args = ap.parse_args(argv)

    repo = os.path.abspath(args.repo)
    onevit = resolve_onevit(args.onevit, repo)
    convert = resolve_converter(repo)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for n in names:
        if n not in MODELS:
            ap.error(f"unknown model {n!r}; choose from {', '.join(MODELS)}")
    batches = sorted({int(b) for b in args.batches.split(",")})
    set_torch_threads(8)

    rows, failures = [], []
    t_start = time.time()
    bf16 = args.precision == "bf16"

    def rel_tol(depth: int) -> float:
        return bf16_rel_tol(depth) if bf16 else REL_TOL
    tolerance = f"bf16_rel_tol(depth) ({bf16_rel_tol(12):.3g} at depth 12)" if bf16 else f"{REL_TOL:g}"
    print(f"onevit: {onevit} (--precision {args.precision})\nconverter: {convert}\n"
          f"tolerance: max|Δ| ≤ {tolerance} × max(1, max|ref|)")
    print(f"{'model':<24}{'batch':>6}{'max|ref|':>10}{'max|Δ|':>12}{'tolerance':>12}"
          f"{'erf/tanh gap':>14}{'onevit s':>10}  result")
    with scratch_dir("onevit_parity_", args.keep) as tmp:
        for n in names:
            arch, dim, depth, heads = MODELS[n]
            cfg = vit_reference.ViTConfig(image_size=(224, 224), patch_size=16, in_chans=3,
                                          embed_dim=dim, depth=depth, num_heads=heads,
                                          mlp_dim=4 * dim, num_classes=NUM_CLASSES, eps=1e-6,
                                          gelu="erf")
            state = random_vit_state(dim, depth, mlp_dim=4 * dim, num_classes=NUM_CLASSES,
                                     seed=SEED)
            ckpt = os.path.join(tmp, f"{n}.safetensors")
            model_path = os.path.join(tmp, f"{n}.ovit")
            safetensors_io.save_file(state, ckpt, metadata={"format": "pt"})
            try:
                run_tool([sys.executable, convert, ckpt, "--arch", arch, "-o", model_path],
                         "convert.py")
            finally:
                os.remove(ckpt)
            problems = check_ovit(model_path, state, cfg)
            if problems:
                failures.append(f"{arch}: converted file disagrees with the checkpoint:\n    "
                                + "\n    ".join(problems[:20]))
                print(f"{arch:<24}{'-':>6}  converter check FAILED")
                os.remove(model_path)
                continue

            ref_model = vit_reference.from_timm_state_dict(state, cfg, dtype=torch.float64)
            del state
            bmax = max(batches)
            x = torch.randn((bmax, 3, 224, 224), generator=torch.Generator().manual_seed(SEED + dim),
                            dtype=torch.float32)
            with torch.no_grad():
                ref_all = ref_model(x.to(torch.float64)).numpy()
                ref_model.cfg.gelu = "tanh"
                gap = float(np.abs(ref_model(x[:1].to(torch.float64)).numpy() - ref_all[:1]).max())
                ref_model.cfg.gelu = "erf"
            del ref_model
            for b in batches:
                inp = os.path.join(tmp, f"{n}_b{b}_in.npy")
                out = os.path.join(tmp, f"{n}_b{b}_out.npy")
                np.save(inp, x[:b].numpy())   # the first b images: reference rows 0..b-1
                t0 = time.time()
                run_tool([onevit, "infer", "--model", model_path, "--input", inp, "--output", out,
                          "--precision", args.precision], "onevit infer")
                secs = time.time() - t0
                got = np.load(out)
                ref = ref_all[:b]
                if got.shape != ref.shape:
                    failures.append(f"{arch} batch {b}: onevit logits shape {got.shape}, "
                                    f"expected {ref.shape}")
                    print(f"{arch:<24}{b:>6}  shape {got.shape} != {ref.shape}  FAIL")
                    continue
                if not np.all(np.isfinite(got)):
                    failures.append(f"{arch} batch {b}: onevit logits contain NaN/Inf")
                    print(f"{arch:<24}{b:>6}  non-finite logits  FAIL")
                    continue
                check = parity(got, ref, rel_tol(depth))
                rows.append((arch, b, check.diff, check.tol))
                print(f"{arch:<24}{b:>6}{check.ref_max:>10.3f}{check.diff:>12.3e}{check.tol:>12.3e}{gap:>14.3e}"
                      f"{secs:>10.2f}  {'ok' if check.ok else 'FAIL'}", flush=True)
                if not check.ok:
                    failures.append(f"{arch} batch {b}: max|Δ| {check.diff:.3e} > tolerance {check.tol:.3e} "
                                    f"({check.worst})")
                os.remove(inp)
                os.remove(out)
            os.remove(model_path)

    print(f"total {time.time() - t_start:.1f}s")
    return report(failures, "onevit logits disagree with the PyTorch reference",
                  f"{len(rows)} cases within tolerance")


if __name__ == "__main__":
    sys.exit(exit_status(main))
