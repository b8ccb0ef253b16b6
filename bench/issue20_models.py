#!/usr/bin/env python3
"""Issue 20's full-size checks on timm's own models, random weights (no hub access).

    /work/venv-modern/bin/python bench/issue20_models.py bench-models [--out DIR] [--force]
    /work/venv-modern/bin/python bench/issue20_models.py dinov3-cosine --onevit build/apps/onevit
                                 [--photos ../shared/data/imagenet-sample] [--weights default|nontrivial]

Each model is built by timm (timm.create_model, pretrained=False: timm's default init, full
depth), saved as safetensors with timm's own hub config (save_config_for_hf) and converted as
users do, `weights/convert.py CKPT --config config.json` with the product's python.

bench-models: the three ViT-B/16 at 224² of the efficiency target (RoPE and SwiGLU ViT-B/16 at
≥ 0.95 of the plain one's `onevit bench` efficiency) in DIR (default ~/.cache/onevit/issue20-bench):
plain.ovit (vit_base_patch16_224), rope.ovit (vit_base_patch16_rope_224: axial RoPE, no position
table) and swiglu.ovit (vit_base_patch16_224 with timm's SwiGLUPacked MLP, SiLU, mlp_ratio
5.33334 as DINOv2-g: fc1 768 → 2 × 2048, fc2 2048 → 768, the plain MLP's parameters and FLOPs).
It does not time them: it prints the bench commands to run on a quiet machine.

dinov3-cosine: vit_small_patch16_dinov3 embeds every photo with `onevit embed` at f32, bf16
and int8; prints, per precision, the cosine similarity of each photo's embedding to f32's
(min, median). --weights nontrivial replaces timm's init (LayerScale 1e-5 leaves the blocks
almost silent) by tests/fixtures/make_modern_fixtures.randomise's values.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
PRODUCT_PYTHON = "/usr/bin/python3"  # the converter runs without timm or torch, as users run it

BENCH_DIR = os.path.expanduser("~/.cache/onevit/issue20-bench")


def bench_models():
    """name → (a function building the timm model (random weights, full depth, 224²), the model_args
    its config.json says: timm cannot write the SwiGLU one's layer classes, so they go by timm's names)."""
    import timm
    from timm.layers import SwiGLUPacked
    import torch.nn as nn
    return {
        "plain": (lambda: timm.create_model("vit_base_patch16_224", pretrained=False), None),
        "rope": (lambda: timm.create_model("vit_base_patch16_rope_224", pretrained=False), None),
        "swiglu": (lambda: timm.create_model("vit_base_patch16_224", pretrained=False, mlp_layer=SwiGLUPacked,
                                             act_layer=nn.SiLU, mlp_ratio=5.33334), {"mlp_layer": "SwiGLUPacked", "act_layer": "silu"}),
    }


def convert(model, out: str, tmp: str, model_args=None) -> None:
    """timm model → safetensors + timm's config.json → weights/convert.py --config → out."""
    from safetensors.torch import save_file
    from timm.models._hub import save_config_for_hf
    ckpt, config = os.path.join(tmp, "model.safetensors"), os.path.join(tmp, "config.json")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, ckpt, metadata={"format": "pt"})
    save_config_for_hf(model, config, model_args=model_args)
    proc = subprocess.run([PRODUCT_PYTHON, os.path.join(REPO, "weights", "convert.py"), ckpt, "--config", config,
                           "-o", out + ".part"], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"convert.py failed for {out}: {proc.stderr.strip()}")
    os.replace(out + ".part", out)


def cmd_bench_models(args) -> int:
    import torch
    os.makedirs(args.out, exist_ok=True)
    for name, (build, model_args) in bench_models().items():
        out = os.path.join(args.out, f"{name}.ovit")
        if os.path.exists(out) and not args.force:
            print(f"kept {out}")
            continue
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory(prefix="onevit_issue20_") as tmp:
            convert(build().eval(), out, tmp, model_args)
        print(f"wrote {out} ({os.path.getsize(out) / 2**20:.0f} MiB)")
    files = " ".join(os.path.join(args.out, f"{n}.ovit") for n in bench_models())
    print("\nOn a quiet machine (efficiency = each model's GFLOP/s over the plain one's, same run):")
    for precision in ("f32", "int8"):
        for batch in (1, 8):
            print(f"  for m in {files}; do build/apps/onevit bench --model $m --threads 2 --batch {batch} "
                  f"--precision {precision}; done")
    return 0


def cmd_dinov3_cosine(args) -> int:
    import numpy as np
    import timm
    import torch
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_dinov3", pretrained=False, num_classes=0).eval()
    if args.weights == "nontrivial":
        from make_modern_fixtures import randomise
        randomise(model, 1)
    with tempfile.TemporaryDirectory(prefix="onevit_dinov3_") as tmp:
        ovit = os.path.join(tmp, "dinov3_s.ovit")
        convert(model, ovit, tmp)
        embeddings = {}
        for precision in ("f32", "bf16", "int8"):
            out = os.path.join(tmp, f"{precision}.npy")
            proc = subprocess.run([args.onevit, "embed", "--model", ovit, "--precision", precision, "-o", out,
                                   args.photos], capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"onevit embed --precision {precision} failed: {proc.stderr.strip()}")
            embeddings[precision] = np.load(out).astype(np.float64)
    ref = embeddings["f32"]
    print(f"vit_small_patch16_dinov3, timm {timm.__version__}, weights {args.weights}, "
          f"{ref.shape[0]} photos, embedding {ref.shape[1]} wide")
    for precision in ("bf16", "int8"):
        got = embeddings[precision]
        cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
        print(f"{precision} vs f32: cosine min {cos.min():.5f}, median {np.median(cos):.5f}, "
              f"photos below 0.99: {int((cos < 0.99).sum())}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench-models", help="write the three ViT-B/16 files of the efficiency target")
    b.add_argument("--out", default=BENCH_DIR)
    b.add_argument("--force", action="store_true", help="rewrite existing files")
    d = sub.add_parser("dinov3-cosine", help="DINOv3-S embeddings at bf16/int8 against f32 on photos")
    d.add_argument("--onevit", default=os.path.join(REPO, "build", "apps", "onevit"))
    d.add_argument("--photos", default=os.path.join(REPO, "..", "shared", "data", "imagenet-sample"))
    d.add_argument("--weights", choices=("default", "nontrivial"), default="default")
    args = ap.parse_args(argv)
    return cmd_bench_models(args) if args.command == "bench-models" else cmd_dinov3_cosine(args)


if __name__ == "__main__":
    sys.exit(main())
