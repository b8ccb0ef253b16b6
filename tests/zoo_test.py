#!/usr/bin/python3
"""timm's ViT zoo by description (issue 14): onevit vs. the project's own PyTorch reference.

For each variant, named as timm registers it (DeiT-III, DINOv2 with and without registers,
CLIP with QuickGELU, SigLIP with attention pooling and with average pooling, ViTs with
register tokens and average pooling, with and without fc_norm, a MAP head after
registers), at small random sizes whose widths divide the heads the name's size word
gives:

  1. timm-named weights with realistic scales (q/k weights 1.75/sqrt(D), fc1 2/sqrt(D),
     LayerNorm affines 1 ± 0.1 with biases, LayerScale gammas 0.5 ± 0.3, tokens as large
     as the patch tokens), saved as safetensors, with a hub-style config.json: only
     `architecture`, `num_classes`, `num_features`, `global_pool` and `pretrained_cfg`
     (no model_args: heads, activation and LayerNorm eps come from the name);
  2. `weights/convert.py CKPT --config config.json [--image-size HxW] -o M.ovit`, and a
     check of the arch.* keys timm's registry implies;
  3. `onevit infer ... --output --embedding --cls --tokens` at batch 1 and 3;
  4. the output (logits; without a head the embedding, as timm's forward gives with
     num_classes=0), embedding, class token (where there is one) and patch tokens against
     tests/reference/timm_zoo_reference.py in float64:
     max|Δ| ≤ 1e-4 × max(1, max|ref|) per output; with --precision bf16 (the blocks
     compute in bf16; patch embedding, norm_pre, pooling, attention pooling and the
     head stay f32), 2e-2 × max(1, max|ref|), issue 11's bf16 bound.

Usage: /usr/bin/python3 tests/zoo_test.py --onevit build/apps/onevit [--variants a,b] [--precision bf16] [--keep]
Exit status: 0 pass, 1 a comparison failed, 2 a tool failed.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
sys.path.insert(0, HERE)
# harness first: it keeps the tools' environment and quiets torch's OpenMP spinning.
from harness import BF16_REL_TOL, REL_TOL, argument_parser, exit_status, parity, report, resolve_converter, \
    resolve_onevit, run_tool, scratch_dir  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import safetensors_io  # noqa: E402
import timm_zoo_reference as zoo  # noqa: E402
from seeds_test import resampled_timm_state  # noqa: E402

BATCHES = (1, 3)
DEPTH = 2
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
CLIP = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}


@dataclass
class Variant:
    """A timm model as its registry builds it: the state's layout, and what the name implies."""
    arch: str
    dim: int
    mlp: int
    image: Tuple[int, int]            # pretrained_cfg.input_size
    heads: int                        # what timm registers for the name
    classes: int = 10                 # 0: no head
    class_token: bool = True
    registers: int = 0
    no_embed_class: bool = False
    layer_scale: bool = False
    pre_norm: bool = False            # norm_pre, and a patch embedding without bias (CLIP)
    qkv_bias: bool = True
    head_bias: bool = True
    global_pool: str = "token"
    fc_norm: bool = False
    act: str = "erf"
    eps: float = 1e-6
    patch: int = 16
    cfg: dict = field(default_factory=dict)     # more pretrained_cfg entries
    run_image: Optional[Tuple[int, int]] = None  # --image-size

    def grid(self, image):
        return image[0] // self.patch, image[1] // self.patch


VARIANTS = {
    "deit3-layerscale-no-embed-class": Variant(
        "deit3_small_patch16_224", dim=96, mlp=192, image=(64, 48), heads=6, no_embed_class=True,
        layer_scale=True, cfg=dict(IMAGENET, crop_pct=1.0)),
    "dinov2-patch14-headless-resized": Variant(
        "vit_small_patch14_dinov2", dim=96, mlp=256, image=(70, 70), heads=6, classes=0, layer_scale=True,
        patch=14, cfg=dict(IMAGENET, crop_pct=1.0), run_image=(98, 126)),
    "dinov2-reg4": Variant(
        "vit_small_patch14_reg4_dinov2", dim=96, mlp=384, image=(56, 56), heads=6, classes=0, registers=4,
        no_embed_class=True, layer_scale=True, patch=14, cfg=dict(IMAGENET, crop_pct=1.0)),
    "clip-quickgelu-norm-pre": Variant(
        "vit_base_patch16_clip_quickgelu_224", dim=96, mlp=384, image=(48, 48), heads=12, classes=32,
        pre_norm=True, head_bias=False, act="quick", eps=1e-5, cfg=CLIP),
    "siglip-map-headless": Variant(
        "vit_base_patch16_siglip_224", dim=96, mlp=384, image=(64, 64), heads=12, classes=0,
        class_token=False, global_pool="map"),
    "siglip2-gap-tanh": Variant(
        "vit_so400m_patch16_siglip_gap_256", dim=64, mlp=240, image=(48, 48), heads=16, classes=0,
        class_token=False, global_pool="avg", act="tanh"),
    "reg4-gap-fc-norm": Variant(
        "vit_medium_patch16_reg4_gap_256", dim=64, mlp=256, image=(64, 64), heads=8, class_token=False,
        registers=4, no_embed_class=True, layer_scale=True, global_pool="avg", fc_norm=True),
    "gap-no-qkv-bias": Variant(
        "vit_medium_patch16_gap_256", dim=64, mlp=256, image=(32, 48), heads=8, class_token=False,
        qkv_bias=False, layer_scale=True, global_pool="avg", cfg={"crop_pct": 1.0}),
    "reg4-map-head": Variant(
        "vit_so150m_patch16_reg4_map_256", dim=56, mlp=144, image=(48, 48), heads=14, class_token=False,
        registers=4, global_pool="map"),
}


def random_state(v: Variant, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return (torch.randn(tuple(shape), generator=g, dtype=torch.float32) * std).contiguous()

    def token(shape):
        return normal(shape, 0.5).clamp_(-1.0, 1.0)

    d, m = v.dim, v.mlp
    sd = {"patch_embed.proj.weight": normal((d, 3, v.patch, v.patch), (3 * v.patch * v.patch) ** -0.5)}
    if not v.pre_norm:
        sd["patch_embed.proj.bias"] = normal((d,), 0.02)
    if v.class_token:
        sd["cls_token"] = token((1, 1, d))
    if v.registers:
        sd["reg_token"] = token((1, v.registers, d))
    gh, gw = v.grid(v.image)
    prefix = int(v.class_token) + v.registers
    sd["pos_embed"] = token((1, gh * gw + (0 if v.no_embed_class else prefix), d))

    def norm(name, width):
        sd[name + ".weight"] = 1 + normal((width,), 0.1)
        sd[name + ".bias"] = normal((width,), 0.05)

    def linear(name, out, inp, gain, bias=True):
        sd[name + ".weight"] = normal((out, inp), gain * inp ** -0.5)
        if bias:
            sd[name + ".bias"] = normal((out,), 0.05)

    if v.pre_norm:
        norm("norm_pre", d)
    for i in range(DEPTH):
        p = f"blocks.{i}."
        norm(p + "norm1", d)
        linear(p + "attn.qkv", 3 * d, d, 1.75, bias=v.qkv_bias)
        linear(p + "attn.proj", d, d, 1.0)
        norm(p + "norm2", d)
        linear(p + "mlp.fc1", m, d, 2.0)
        linear(p + "mlp.fc2", d, m, 1.0)
        if v.layer_scale:
            sd[p + "ls1.gamma"] = 0.5 + normal((d,), 0.3)
            sd[p + "ls2.gamma"] = 0.5 + normal((d,), 0.3)
    norm("fc_norm" if v.fc_norm else "norm", d)
    if v.global_pool == "map":
        sd["attn_pool.latent"] = token((1, 1, d))
        linear("attn_pool.q", d, d, 1.75)
        linear("attn_pool.kv", 2 * d, d, 1.75)
        linear("attn_pool.proj", d, d, 1.0)
        norm("attn_pool.norm", d)
        linear("attn_pool.mlp.fc1", m, d, 2.0)
        linear("attn_pool.mlp.fc2", d, m, 1.0)
    if v.classes:
        linear("head", v.classes, d, 3.0, bias=v.head_bias)
    return sd


def hub_config(v: Variant) -> dict:
    """What a timm hub config.json holds: no model_args."""
    cfg = dict(v.cfg, input_size=[3, *v.image], num_classes=v.classes)
    return {"architecture": v.arch, "num_classes": v.classes, "num_features": v.dim,
            "global_pool": v.global_pool, "pretrained_cfg": cfg}


def expected_arch(v: Variant) -> dict:
    """The arch.* keys timm's registration of the name implies (optional keys at their value)."""
    pool = {"token": "token", "avg": "mean_patches", "map": "map"}[v.global_pool]
    run = v.run_image or v.image
    return {"arch.heads": v.heads, "arch.gelu": v.act, "arch.norm_eps": float(np.float32(v.eps)),
            "arch.num_classes": v.classes, "arch.head": "linear" if v.classes else "none",
            "arch.prefix_tokens": int(v.class_token) + v.registers, "arch.pool": pool,
            "arch.class_token": int(v.class_token), "arch.norm_pre": int(v.pre_norm),
            "arch.final_norm": int(not v.fc_norm), "arch.head_norm": int(v.fc_norm),
            "arch.image_height": run[0], "arch.image_width": run[1], "arch.patch_size": v.patch}


def check_metadata(model_path: str, v: Variant) -> list:
    from vit_reference import read_ovit
    meta, _ = read_ovit(model_path)
    defaults = {"arch.class_token": 1, "arch.norm_pre": 0}
    return [f"{key} = {meta.get(key, defaults.get(key))!r}, timm's {v.arch} has {want!r}"
            for key, want in expected_arch(v).items() if meta.get(key, defaults.get(key)) != want]


def reference_outputs(v: Variant, state: dict, images: np.ndarray) -> dict:
    if v.run_image:
        prefix = 0 if v.no_embed_class else int(v.class_token) + v.registers
        state = resampled_timm_state(state, prefix, v.grid(v.image), v.grid(v.run_image), antialias=False)
    sd = {k: torch.as_tensor(np.asarray(t)).to(torch.float64) for k, t in state.items()}
    cfg = zoo.ZooConfig(heads=v.heads, eps=v.eps, act=v.act, no_embed_class=v.no_embed_class,
                        global_pool=v.global_pool)
    with torch.no_grad():
        out = zoo.forward(sd, cfg, torch.from_numpy(images).to(torch.float64))
    if out["logits"] is None:
        out["logits"] = out["embedding"]   # timm's forward with num_classes=0: head is Identity
    return {k: t.numpy() for k, t in out.items() if t is not None}


def main(argv=None) -> int:
    ap = argument_parser("timm's ViT zoo by description: onevit vs. the project's PyTorch reference",
                         keep=True)
    ap.add_argument("--variants", help="comma list (default: all): " + ", ".join(VARIANTS))
    ap.add_argument("--precision", default="f32", choices=("f32", "bf16"), help="onevit infer --precision")
    args = ap.parse_args(argv)
    rel_tol = BF16_REL_TOL if args.precision == "bf16" else REL_TOL
    onevit = resolve_onevit(args.onevit, args.repo)
    convert = resolve_converter(args.repo)
    names = [n for n in (args.variants or ",".join(VARIANTS)).split(",") if n]
    for n in names:
        if n not in VARIANTS:
            ap.error(f"unknown variant {n!r}")
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    failures = []
    print(f"--precision {args.precision}, tolerance: max|Δ| ≤ {rel_tol:g} × max(1, max|ref|), per output, "
          "float64 reference")
    print(f"{'variant':<34}{'batch':>6}  {'output':<10}{'max|ref|':>10}{'max|Δ|':>12}  result")
    with scratch_dir("onevit_zoo_", args.keep) as tmp:
        for index, name in enumerate(names):
            v = VARIANTS[name]
            state = random_state(v, seed=1400 + index)
            ckpt, config = os.path.join(tmp, f"{name}.safetensors"), os.path.join(tmp, f"{name}.json")
            safetensors_io.save_file(state, ckpt, metadata={"format": "pt"})
            with open(config, "w") as f:
                json.dump(hub_config(v), f)
            model = os.path.join(tmp, f"{name}.ovit")
            extra = ["--image-size", "{}x{}".format(*v.run_image)] if v.run_image else []
            run_tool([sys.executable, convert, ckpt, "--config", config, *extra, "-o", model], "convert.py")
            failures += [f"{name}: {problem}" for problem in check_metadata(model, v)]
            hw = v.run_image or v.image
            for batch in BATCHES:
                rng = np.random.default_rng(100 * index + batch)
                images = rng.standard_normal((batch, 3, *hw)).astype(np.float32)
                paths = {k: os.path.join(tmp, f"{name}_{batch}_{k}.npy")
                         for k in ("input", "logits", "embedding", "cls", "tokens")}
                np.save(paths["input"], images)
                want = reference_outputs(v, state, images)
                cmd = [onevit, "infer", "--model", model, "--input", paths["input"], "--output", paths["logits"],
                       "--embedding", paths["embedding"], "--tokens", paths["tokens"], "--precision", args.precision]
                if "cls" in want:
                    cmd += ["--cls", paths["cls"]]
                run_tool(cmd, "onevit infer")
                for output, ref in want.items():
                    got = np.load(paths[output])
                    if got.shape != ref.shape:
                        failures.append(f"{name} batch {batch} {output}: shape {got.shape}, reference {ref.shape}")
                        continue
                    p = parity(got, ref, rel_tol)
                    print(f"{name:<34}{batch:>6}  {output:<10}{p.ref_max:>10.3f}{p.diff:>12.2e}  "
                          f"{'ok' if p.ok else 'FAIL'}")
                    if not p.ok:
                        failures.append(f"{name} batch {batch} {output}: max|Δ| {p.diff:.3e} > {p.tol:.3e}; "
                                        f"{p.worst}")
    return report(failures, "timm zoo variants differ from the reference",
                  f"{len(names)} timm variants at parity, batches {BATCHES}, --precision {args.precision}")


if __name__ == "__main__":
    sys.exit(exit_status(main))
