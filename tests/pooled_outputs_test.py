#!/usr/bin/python3
"""What the engine does with the pooled vector, against FORMAT.md's forward pass in float64.

Small random models written straight as .ovit files (canonical tensors, explicit `arch.*`
keys), each exercising one optional layer after the pooling:

  * pooler:      pool_proj [D, D] + tanh, no head             (Hugging Face ViTModel's pooler)
  * pre-logits:  pool_proj [R, D] + tanh, then a linear head  (torchvision heads.pre_logits)
  * projection:  norm_pre, no final norm, head_norm, pool_proj [E, D] without activation
                 and zero bias, no head                       (CLIP: post_layernorm, visual_projection)
  * MLP head after pool_proj, average pooling, int8-stored weights
  * token + mean: concat(class token, mean of the patch tokens after 2 registers), 2·D wide,
                 with a linear head and without   (Hugging Face Dinov2ForImageClassification)

For each, `onevit infer --output --embedding` at batch 1 and 3 against
tests/reference/canonical_reference.py: max|Δ| ≤ 1e-4 × max(1, max|ref|) (int8-stored
weights: their widened values are the reference's weights), and `onevit info` names the
pooling and the pool_proj layer.

Usage: /usr/bin/python3 tests/pooled_outputs_test.py --onevit build/apps/onevit [--keep]
Exit status: 0 pass, 1 a comparison failed, 2 a tool failed.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import REL_TOL, argument_parser, exit_status, parity, report, resolve_onevit, run_tool, \
    scratch_dir  # noqa: E402  (before torch)

import numpy as np  # noqa: E402

import canonical_reference  # noqa: E402
import vit_reference  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "weights"))
from onevit_convert.ovit_writer import write_ovit  # noqa: E402

IMAGE, PATCH, C, D, DEPTH, HEADS, MLP = 32, 8, 3, 48, 2, 3, 96
GRID = (IMAGE // PATCH) ** 2
BATCHES = (1, 3)

# name → (arch keys that differ from the base, how linear weights are stored)
VARIANTS = {
    "pooler": ({"arch.pool_proj": D, "arch.pool_proj_act": "tanh", "arch.num_classes": 0, "arch.head": "none"},
               "f32"),
    "pre-logits": ({"arch.pool_proj": 40, "arch.pool_proj_act": "tanh", "arch.num_classes": 7}, "f32"),
    "projection": ({"arch.norm_pre": 1, "arch.final_norm": 0, "arch.head_norm": 1, "arch.pool_proj": 24,
                    "arch.pool_proj_act": "none", "arch.num_classes": 0, "arch.head": "none"}, "f32"),
    "mlp head, int8": ({"arch.pool": "mean_patches", "arch.pool_proj": 32, "arch.pool_proj_act": "tanh",
                        "arch.num_classes": 5, "arch.head": "mlp", "arch.head_hidden": 20}, "int8"),
    "token + mean": ({"arch.pool": "token_and_mean_patches", "arch.prefix_tokens": 3, "arch.num_classes": 6},
                     "f32"),
    "token + mean, none": ({"arch.pool": "token_and_mean_patches", "arch.num_classes": 0, "arch.head": "none"},
                           "f32"),
}


def base_meta() -> dict:
    return {"arch.family": "test", "arch.image_height": IMAGE, "arch.image_width": IMAGE, "arch.channels": C,
            "arch.patch_size": PATCH, "arch.dim": D, "arch.depth": DEPTH, "arch.heads": HEADS,
            "arch.head_dim": D // HEADS, "arch.mlp_dim": MLP, "arch.num_classes": 10, "arch.prefix_tokens": 1,
            "arch.norm_eps": 1e-6, "arch.gelu": "erf", "arch.attn_scale": float(np.float32((D // HEADS) ** -0.5)),
            "arch.qkv_bias": 1, "arch.attn_proj": 1, "arch.final_norm": 1, "arch.pool": "token",
            "arch.head_norm": 0, "arch.head": "linear"}


def tensor_shapes(m: dict) -> list:
    """FORMAT.md's tensor table for these keys, in its order."""
    k, p, t = m["arch.num_classes"], m.get("arch.pool_proj", 0), m["arch.prefix_tokens"]
    pooled = 2 * D if m["arch.pool"] == "token_and_mean_patches" else D
    shapes = [("patch_embed.weight", (D, C, PATCH, PATCH)), ("patch_embed.bias", (D,)),
              ("prefix_tokens", (t, D)), ("pos_embed", (t + GRID, D))]
    if m.get("arch.norm_pre"):
        shapes += [("norm_pre.weight", (D,)), ("norm_pre.bias", (D,))]
    for i in range(DEPTH):
        b = f"blocks.{i}."
        shapes += [(b + "norm1.weight", (D,)), (b + "norm1.bias", (D,)), (b + "attn.qkv.weight", (3 * D, D)),
                   (b + "attn.qkv.bias", (3 * D,)), (b + "attn.proj.weight", (D, D)), (b + "attn.proj.bias", (D,)),
                   (b + "norm2.weight", (D,)), (b + "norm2.bias", (D,)), (b + "mlp.fc1.weight", (MLP, D)),
                   (b + "mlp.fc1.bias", (MLP,)), (b + "mlp.fc2.weight", (D, MLP)), (b + "mlp.fc2.bias", (D,))]
    if m["arch.final_norm"]:
        shapes += [("norm.weight", (D,)), ("norm.bias", (D,))]
    if m["arch.head_norm"]:
        shapes += [("head_norm.weight", (D,)), ("head_norm.bias", (D,))]
    if p:
        shapes += [("pool_proj.weight", (p, pooled)), ("pool_proj.bias", (p,))]
    width = p or pooled
    if m["arch.head"] == "mlp":
        h = m["arch.head_hidden"]
        shapes += [("head_hidden.weight", (h, width)), ("head_hidden.bias", (h,))]
        width = h
    if m["arch.head"] != "none":
        shapes += [("head.weight", (k, width)), ("head.bias", (k,))]
    return shapes


def random_tensors(shapes: list, seed: int, zero_pool_proj_bias: bool) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes:
        if "norm" in name:  # LayerNorm affines near the identity
            value = (name.endswith(".weight") + 0.1 * rng.standard_normal(shape))
        elif name.endswith(".weight") and len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            # pool_proj smaller: its tanh then curves without saturating at ±1.
            value = rng.standard_normal(shape) * (0.5 if name == "pool_proj.weight" else 1.5) / np.sqrt(fan_in)
        else:
            value = 0.5 * rng.standard_normal(shape)
        out[name] = value.astype(np.float32)
    if zero_pool_proj_bias and "pool_proj.bias" in out:
        out["pool_proj.bias"][:] = 0  # CLIP's projection has no bias: the converter writes zeros
    return out


def metadata_entries(m: dict) -> list:
    u32, f32, string, f32_array = 0, 1, 2, 3
    entries = []
    for key, value in m.items():
        kind = string if isinstance(value, str) else f32 if isinstance(value, float) else u32
        entries.append((key, kind, value))
    entries += [("preprocess.resize", string, "direct"), ("preprocess.resize_size", u32, IMAGE),
                ("preprocess.interpolation", string, "bilinear"), ("preprocess.mean", f32_array, [0.5] * C),
                ("preprocess.std", f32_array, [0.5] * C)]
    return entries


def main(argv=None) -> int:
    ap = argument_parser(__doc__.split("\n\n")[0], keep=True)
    args = ap.parse_args(argv)
    onevit = resolve_onevit(args.onevit, args.repo)
    failures = []
    print(f"tolerance: max|Δ| ≤ {REL_TOL:g} × max(1, max|ref|), float64 reference")
    print(f"{'variant':<18}{'batch':>6}  {'output':<10}{'max|ref|':>10}{'max|Δ|':>12}  result")
    with scratch_dir("onevit_pooled_", args.keep) as tmp:
        for seed, (name, (changes, dtype)) in enumerate(VARIANTS.items()):
            meta = dict(base_meta(), **changes)
            tensors = random_tensors(tensor_shapes(meta), seed, meta.get("arch.pool_proj_act") == "none")
            path = os.path.join(tmp, f"{seed}.ovit")
            write_ovit(path, metadata_entries(meta), list(tensors.items()), dtype)
            # The reference runs on the values the file holds (int8: widened as FORMAT.md says).
            file_meta, file_tensors = vit_reference.read_ovit(path)
            info = run_tool([onevit, "info", path], "onevit info")
            act = meta.get("arch.pool_proj_act")
            if act and f"{D} -> {meta['arch.pool_proj']}, activation {act}" not in info:
                failures.append(f"{name}: onevit info does not show the pool_proj layer:\n{info}")
            if meta["arch.pool"] not in info:
                failures.append(f"{name}: onevit info does not show the pooling {meta['arch.pool']}:\n{info}")
            rng = np.random.default_rng(100 + seed)
            for batch in BATCHES:
                images = rng.uniform(-1, 1, (batch, C, IMAGE, IMAGE)).astype(np.float32)
                ref = canonical_reference.forward(file_meta, file_tensors, images)
                x, out, emb = (os.path.join(tmp, f"{seed}_{batch}_{n}.npy") for n in ("x", "out", "emb"))
                np.save(x, images)
                # At f32 (an int8 file would otherwise compute in int8): the reference is f32 arithmetic.
                run_tool([onevit, "infer", "--model", path, "--input", x, "--output", out, "--embedding", emb,
                          "--precision", "f32"], "onevit infer")
                for what, got in (("output", np.load(out)), ("embedding", np.load(emb))):
                    want = ref[what]
                    if got.shape != want.shape:
                        failures.append(f"{name} b{batch} {what}: shape {got.shape}, expected {want.shape}")
                        continue
                    p = parity(got, want)
                    print(f"{name:<18}{batch:>6}  {what:<10}{p.ref_max:>10.3f}{p.diff:>12.3e}  "
                          f"{'ok' if p.ok else 'FAIL'}")
                    if not p.ok:
                        failures.append(f"{name} b{batch} {what}: max|Δ| {p.diff:.3e} > {p.tol:.3e}; {p.worst}")
    return report(failures, "pooled outputs differ from FORMAT.md's forward pass",
                  f"{len(VARIANTS)} pooled-output variants at batch {BATCHES} within tolerance")


if __name__ == "__main__":
    sys.exit(exit_status(main))
