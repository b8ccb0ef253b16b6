#!/usr/bin/python3
"""Every seed's ViT, DeiT-distilled and other input sizes: onevit vs. the seed's own model.

For each variant, with fixed-seed random weights at realistic scales (q/k weights
1.75/sqrt(fan-in): peaked attention; fc1 2/sqrt(fan-in): GELU in its curved range; LayerNorm
weights 1 ± 0.1 with biases; class/position tokens as large as the patch tokens; logits of
a few units):

  1. save the checkpoint in its native naming and container: the state dict through
     torch.save for the PyTorch seeds, an .npz of the '/'-joined tree for the Flax seed,
     safetensors for timm / DeiT,
  2. write config.json: the seed constructor's keyword arguments (timm config for DeiT
     and the resized timm ViT),
  3. `weights/convert.py CKPT --config config.json [--image-size ...] -o M.ovit`, and
     check a few arch.* keys of the result,
  4. `onevit infer --model M.ovit --input in.npy --output out.npy --cls cls.npy
     --tokens tokens.npy` on random NCHW input, batch 1 and 3,
  5. compare logits, class token and patch tokens with tests/reference/seed_models.py
     (written from the seed code, loading the seed's own state dict strictly) or, for the
     timm-named models, tests/reference/vit_reference.py, all in float64:
     max|Δ| ≤ 1e-4 × max(1, max|ref|) per output.

Variants: vit-pytorch (seeds 001/002) with cls and mean pooling, heads·dim_head ≠ dim on a
non-square image, heads = 1 with dim_head = dim (no to_out); vit-pytorch-2023 (seed 003,
dual patch norm, final norm), also run at another size; the MNIST ViT (seed 004, 1×28×28,
attention scaled by dim^-0.5, MLP head); the Flax ViT (seed 000, embed_dim ≠ hidden_dim,
tanh GELU); DeiT distilled; a ViT trained at 224 run at 384 and at 224×320 through
--image-size (the reference resamples the position grid with F.interpolate bicubic,
align_corners=False; and antialias=True for --pos-resample bicubic-antialias).

Usage:
    /usr/bin/python3 tests/seeds_test.py --onevit build/apps/onevit [--variants a,b] [--keep]
Exit status: 0 pass, 1 a comparison failed, 2 a tool (converter, onevit) failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
# harness first: it keeps the tools' environment and quiets torch's OpenMP spinning.
from harness import REL_TOL, ToolError, parity, resolve_onevit, run_tool  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import safetensors_io  # noqa: E402
import seed_models  # noqa: E402
import vit_reference  # noqa: E402
from random_vit import random_vit_state  # noqa: E402

SEED = 20240917
BATCHES = (1, 3)
OUTPUTS = ("logits", "cls", "tokens")


# ----------------------------------------------------------------------------- weights

def init_seed_state(model: nn.Module, seed: int) -> Dict[str, torch.Tensor]:
    """Realistic random float32 weights for a seed model, under its own parameter names."""
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(tuple(shape), generator=g, dtype=torch.float32) * std

    head_names = {"mlp_head", "mlp_head.1", "mlp_head.2"}   # the layer producing the logits
    sd = {}
    for name, m in model.named_modules():
        p = name + "."
        if isinstance(m, nn.LayerNorm):
            sd[p + "weight"] = 1 + normal(m.weight.shape, 0.1)
            sd[p + "bias"] = normal(m.bias.shape, 0.05)
        elif isinstance(m, nn.Linear):
            if "to_qkv" in name:
                gain = 1.75
            elif name in head_names:
                gain = 3.0
            elif name.endswith("net.0") or name.endswith("net.1") or name == "mlp_head.0":
                gain = 2.0                   # the first Linear of an MLP (and the MLP head)
            else:
                gain = 1.0
            sd[p + "weight"] = normal(m.weight.shape, gain * m.in_features ** -0.5)
            if m.bias is not None:
                sd[p + "bias"] = normal(m.bias.shape, 0.05)
    for name, param in model.named_parameters(recurse=False):   # cls_token, pos_embedding
        sd[name] = normal(param.shape, 0.5).clamp_(-1.0, 1.0)
    missing = set(model.state_dict()) - set(sd)
    assert not missing, f"init_seed_state left {sorted(missing)} unset"
    return sd


def init_flax_params(kw: dict, image_hw, seed: int) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p, e, hd, m, k = kw["patch_size"], kw["embed_dim"], kw["hidden_dim"], kw["mlp_dim"], kw["num_classes"]
    c = kw["channels"]
    grid = (image_hw[0] // p) * (image_hw[1] // p)

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    params = {
        "patches/conv/kernel": normal((p, p, c, e), (p * p * c) ** -0.5),
        "patches/conv/bias": normal((e,), 0.02),
        "patch_encoder/Dense_0/kernel": normal((e, hd), e ** -0.5),
        "patch_encoder/Dense_0/bias": normal((hd,), 0.02),
        "patch_encoder/cls_token": np.clip(normal((1, 1, hd), 0.5), -1, 1),
        "patch_encoder/position_embedding": np.clip(normal((1, grid + 1, hd), 0.5), -1, 1),
        "head/kernel": normal((hd, k), 3.0 * hd ** -0.5),
        "head/bias": normal((k,), 0.1),
    }
    for i in range(kw["num_layers"]):
        b = f"encoder_{i}/"
        params[b + "layer_norm/scale"] = 1 + normal((hd,), 0.1)
        params[b + "layer_norm/bias"] = normal((hd,), 0.05)
        for n in ("q_net", "k_net", "v_net"):
            params[f"{b}mha/{n}/kernel"] = normal((hd, hd), 1.75 * hd ** -0.5)
            params[f"{b}mha/{n}/bias"] = normal((hd,), 0.05)
        params[b + "mha/proj_net/kernel"] = normal((hd, hd), hd ** -0.5)
        params[b + "mha/proj_net/bias"] = normal((hd,), 0.02)
        params[b + "mlp/Dense_0/kernel"] = normal((hd, m), 2.0 * hd ** -0.5)
        params[b + "mlp/Dense_0/bias"] = normal((m,), 0.05)
        params[b + "mlp/Dense_1/kernel"] = normal((m, hd), m ** -0.5)
        params[b + "mlp/Dense_1/bias"] = normal((hd,), 0.02)
    assert set(params) == set(seed_models.flax_param_names(kw["num_layers"]))
    return params


# ----------------------------------------------------------------------------- timm-named models

def timm_config(arch: str, img, patch, dim, depth, heads, mlp, classes) -> dict:
    return {"architecture": arch, "num_classes": classes, "global_pool": "token",
            "model_args": {"img_size": img, "patch_size": patch, "embed_dim": dim, "depth": depth,
                           "num_heads": heads, "mlp_ratio": mlp / dim},
            "pretrained_cfg": {"num_classes": classes}}


def timm_cfg(img_hw, patch, dim, depth, heads, mlp, classes, distilled=False):
    return vit_reference.ViTConfig(image_size=tuple(img_hw), patch_size=patch, in_chans=3,
                                   embed_dim=dim, depth=depth, num_heads=heads, mlp_dim=mlp,
                                   num_classes=classes, eps=1e-6, gelu="erf", distilled=distilled)


def resampled_timm_state(state: dict, prefix: int, old_grid, new_grid, antialias: bool) -> dict:
    """timm-style resample_abs_pos_embed, in PyTorch: prefix rows kept, the [1, D, gh, gw]
    grid through F.interpolate(bicubic, align_corners=False)."""
    pos = torch.as_tensor(state["pos_embed"]).to(torch.float64)   # [1, T + G, D]
    d = pos.shape[-1]
    grid = pos[:, prefix:].reshape(1, old_grid[0], old_grid[1], d).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=tuple(new_grid), mode="bicubic", align_corners=False,
                         antialias=antialias)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], d)
    out = dict(state)
    out["pos_embed"] = torch.cat([pos[:, :prefix], grid], dim=1)
    return out


class TimmRef:
    """vit_reference in float64, returning (logits, class token, patch tokens)."""

    def __init__(self, state, cfg):
        sd = {k: torch.as_tensor(np.asarray(v)).to(torch.float64) for k, v in state.items()}
        self.model = vit_reference.from_timm_state_dict(sd, cfg, dtype=torch.float64)

    def __call__(self, x):
        with torch.no_grad():
            xd = x.to(torch.float64)
            tokens = self.model.tokens(xd)
            logits = self.model(xd)
        t = self.model.cfg.prefix_tokens
        return logits.numpy(), tokens[:, 0].numpy(), tokens[:, t:].numpy()


# ----------------------------------------------------------------------------- variants

@dataclass
class Prepared:
    checkpoint: str                     # file name inside the work dir
    config: dict
    reference: Callable                 # images (float32 NCHW tensor) → (logits, cls, tokens)
    input_chw: tuple                    # (C, H, W) onevit gets
    convert_args: list = field(default_factory=list)
    expect: dict = field(default_factory=dict)   # arch.* keys the .ovit must hold


def seed_variant(family, kwargs, *, seed, expect, image_size_arg=None, run_hw=None):
    """A PyTorch seed model saved with torch.save under its own names."""
    def prepare(tmp, name):
        model = seed_models.build(family, kwargs)
        state = init_seed_state(model, seed)
        path = os.path.join(tmp, name + ".pt")
        torch.save(state, path)
        channels = kwargs.get("channels", 3)
        size = kwargs["image_size"]
        hw = tuple(size) if isinstance(size, list) else (size, size)
        args = []
        if image_size_arg:
            # The seed model itself cannot run at another size: its reference is the same
            # model with the position grid resampled as the converter documents it.
            args = ["--image-size", image_size_arg]
            ref_kwargs = dict(kwargs, image_size=list(run_hw))
            ref_state = dict(state)
            p = kwargs["patch_size"]
            ref_state["pos_embedding"] = resampled_timm_state(
                {"pos_embed": state["pos_embedding"]}, 1, (hw[0] // p, hw[1] // p),
                (run_hw[0] // p, run_hw[1] // p), antialias=False)["pos_embed"]
            ref = seed_models.load(family, ref_kwargs, ref_state)
            hw = tuple(run_hw)
        else:
            ref = seed_models.load(family, kwargs, state)
        return Prepared(name + ".pt", dict(kwargs), lambda x: seed_models.run(ref, x),
                        (channels, *hw), args, expect)
    return prepare


def flax_variant(kwargs, *, seed, expect):
    def prepare(tmp, name):
        size = kwargs["image_size"]
        hw = tuple(size) if isinstance(size, list) else (size, size)
        params = init_flax_params(kwargs, hw, seed)
        np.savez(os.path.join(tmp, name + ".npz"), **params)
        ref = seed_models.load("flax-seed", kwargs, params)
        return Prepared(name + ".npz", dict(kwargs), lambda x: seed_models.run(ref, x),
                        (kwargs["channels"], *hw), [], expect)
    return prepare


def timm_variant(arch, *, img, patch, dim, depth, heads, mlp, classes, distilled, seed, expect,
                 image_size_arg=None, run_hw=None, antialias=False):
    def prepare(tmp, name):
        prefix = 2 if distilled else 1
        grid = (img // patch) ** 2
        state = random_vit_state(dim, depth, mlp_dim=mlp, num_classes=classes, patch=patch,
                                 grid_tokens=grid, prefix=prefix, seed=seed)
        if distilled:
            g = torch.Generator().manual_seed(seed + 1)
            state["dist_token"] = (torch.randn((1, 1, dim), generator=g) * 0.5).clamp_(-1, 1)
            state["head_dist.weight"] = torch.randn((classes, dim), generator=g) * 3.0 * dim ** -0.5
            state["head_dist.bias"] = torch.randn((classes,), generator=g) * 0.1
        safetensors_io.save_file(state, os.path.join(tmp, name + ".safetensors"),
                                 metadata={"format": "pt"})
        config = timm_config(arch, img, patch, dim, depth, heads, mlp, classes)
        hw, args = (img, img), []
        if image_size_arg:
            args = ["--image-size", image_size_arg]
            if antialias:
                args += ["--pos-resample", "bicubic-antialias"]
            state = resampled_timm_state(state, prefix, (img // patch, img // patch),
                                         (run_hw[0] // patch, run_hw[1] // patch), antialias)
            hw = tuple(run_hw)
        ref = TimmRef(state, timm_cfg(hw, patch, dim, depth, heads, mlp, classes, distilled))
        return Prepared(name + ".safetensors", config, ref, (3, *hw), args, expect)
    return prepare


VP = dict(image_size=32, patch_size=8, num_classes=10, dim=64, depth=2, heads=4, mlp_dim=128,
          dim_head=16)
VP2023 = dict(image_size=32, patch_size=8, num_classes=10, dim=64, depth=2, heads=4, mlp_dim_ratio=2,
              dim_head=16)
SMALL_224 = dict(img=224, patch=16, dim=64, depth=2, heads=4, mlp=128, classes=10, distilled=False)

VARIANTS = {
    "vit-pytorch cls": seed_variant(
        "vit-pytorch", dict(VP, pool="cls"), seed=SEED + 1,
        expect={"arch.family": "vit-pytorch", "arch.pool": "token", "arch.head_norm": 1,
                "arch.final_norm": 0, "arch.qkv_bias": 0, "arch.attn_proj": 1}),
    "vit-pytorch mean": seed_variant(
        "vit-pytorch", dict(VP, pool="mean"), seed=SEED + 2,
        expect={"arch.pool": "mean", "arch.head_norm": 1, "arch.final_norm": 0}),
    "vit-pytorch inner≠dim 32x48": seed_variant(
        "vit-pytorch", dict(VP, image_size=[32, 48], heads=3, dim_head=24), seed=SEED + 3,
        expect={"arch.heads": 3, "arch.head_dim": 24, "arch.image_width": 48, "arch.attn_proj": 1}),
    "vit-pytorch 1 head no to_out": seed_variant(
        "vit-pytorch", dict(VP, heads=1, dim_head=64), seed=SEED + 4,
        expect={"arch.heads": 1, "arch.head_dim": 64, "arch.attn_proj": 0}),
    "vit-pytorch-2023": seed_variant(
        "vit-pytorch-2023", VP2023, seed=SEED + 5,
        expect={"arch.family": "vit-pytorch-2023", "arch.patch_norm": 1, "arch.final_norm": 1,
                "arch.head_norm": 0, "arch.mlp_dim": 128}),
    "vit-pytorch-2023 mean": seed_variant(
        "vit-pytorch-2023", dict(VP2023, pool="mean"), seed=SEED + 12,
        expect={"arch.pool": "mean_patches", "arch.final_norm": 1}),
    "vit-pytorch-2023 @48x64": seed_variant(
        "vit-pytorch-2023", VP2023, seed=SEED + 6, image_size_arg="48x64", run_hw=(48, 64),
        expect={"arch.image_height": 48, "arch.image_width": 64, "arch.patch_norm": 1}),
    "mnist-vit 1x28x28": seed_variant(
        "mnist-vit", dict(image_size=28, patch_size=7, num_classes=10, channels=1, dim=64, depth=2,
                          heads=8, mlp_dim=128), seed=SEED + 7,
        expect={"arch.family": "mnist-vit", "arch.head": "mlp", "arch.head_hidden": 128,
                "arch.channels": 1, "arch.final_norm": 0, "arch.attn_scale": float(np.float32(64 ** -0.5))}),
    "flax-seed embed≠hidden": flax_variant(
        dict(patch_size=8, embed_dim=48, hidden_dim=64, n_heads=4, num_layers=2, mlp_dim=128,
             num_classes=10, image_size=32, channels=3), seed=SEED + 8,
        expect={"arch.family": "flax-seed", "arch.gelu": "tanh", "arch.final_norm": 0,
                "arch.dim": 64, "arch.qkv_bias": 1}),
    "deit distilled": timm_variant(
        "deit_tiny_distilled_patch16_224", img=32, patch=8, dim=64, depth=2, heads=4, mlp=128,
        classes=10, distilled=True, seed=SEED + 9,
        expect={"arch.head": "distilled", "arch.prefix_tokens": 2}),
    "vit 224 → 384": timm_variant(
        "vit_small_patch16_224", **SMALL_224, seed=SEED + 10, image_size_arg="384", run_hw=(384, 384),
        expect={"arch.image_height": 384, "arch.image_width": 384}),
    "vit 224 → 224x320": timm_variant(
        "vit_small_patch16_224", **SMALL_224, seed=SEED + 10, image_size_arg="224x320",
        run_hw=(224, 320), expect={"arch.image_height": 224, "arch.image_width": 320}),
    "vit 224 → 384 antialias": timm_variant(
        "vit_small_patch16_224", **SMALL_224, seed=SEED + 10, image_size_arg="384", run_hw=(384, 384),
        antialias=True, expect={"arch.image_height": 384}),
}


# ----------------------------------------------------------------------------- running

def read_metadata(path: str) -> dict:
    meta, _ = vit_reference.read_ovit(path)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="onevit vs. the seed models' own PyTorch code")
    ap.add_argument("--onevit", help="path to the onevit binary (default: $ONEVIT_BIN)")
    ap.add_argument("--repo", default=os.path.dirname(HERE), help="repository root")
    ap.add_argument("--variants", help="comma list of variant names (default: all): " +
                    "; ".join(VARIANTS))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)

    repo = os.path.abspath(args.repo)
    onevit = resolve_onevit(args.onevit, repo)
    convert = os.path.join(repo, "weights", "convert.py")
    if not os.path.isfile(convert):
        print(f"FAIL: converter not found: {convert}")
        return 2
    names = list(VARIANTS)
    if args.variants:
        names = [n.strip() for n in args.variants.split(",") if n.strip()]
        for n in names:
            if n not in VARIANTS:
                ap.error(f"unknown variant {n!r}; choose from: {'; '.join(VARIANTS)}")
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

    tmp = tempfile.mkdtemp(prefix="onevit_seeds_")
    failures, tool_failures, rows = [], [], 0
    t_start = time.time()
    print(f"onevit: {onevit}\nconverter: {convert}\n"
          f"tolerance: max|Δ| ≤ {REL_TOL:g} × max(1, max|ref|), per output, float64 reference")
    print(f"{'variant':<30}{'batch':>6}  {'output':<8}{'max|ref|':>10}{'max|Δ|':>12}"
          f"{'tolerance':>12}  result")
    try:
        for index, name in enumerate(names):
            work = os.path.join(tmp, f"v{index}")
            os.makedirs(work)
            prep = VARIANTS[name](work, "ckpt")
            config_path = os.path.join(work, "config.json")
            with open(config_path, "w") as f:
                json.dump(prep.config, f)
            model_path = os.path.join(work, "model.ovit")
            try:
                run_tool([sys.executable, convert, os.path.join(work, prep.checkpoint), "--config",
                          config_path, *prep.convert_args, "-o", model_path], "convert.py")
            except ToolError as e:
                tool_failures.append(f"{name}: {e}")
                print(f"{name:<30}{'-':>6}  convert.py FAILED")
                continue
            meta = read_metadata(model_path)
            wrong = {k: (meta.get(k), v) for k, v in prep.expect.items() if meta.get(k) != v}
            if wrong:
                failures.append(f"{name}: metadata (got, expected): {wrong}")
                print(f"{name:<30}{'-':>6}  metadata FAILED {wrong}")

            c, h, w = prep.input_chw
            g = torch.Generator().manual_seed(SEED + 100 + index)
            x = torch.randn((max(BATCHES), c, h, w), generator=g, dtype=torch.float32)
            refs = dict(zip(OUTPUTS, prep.reference(x)))
            for b in BATCHES:
                inp = os.path.join(work, f"in{b}.npy")
                outs = {o: os.path.join(work, f"{o}{b}.npy") for o in OUTPUTS}
                np.save(inp, x[:b].numpy())
                try:
                    run_tool([onevit, "infer", "--model", model_path, "--input", inp,
                              "--output", outs["logits"], "--cls", outs["cls"],
                              "--tokens", outs["tokens"]], "onevit infer")
                except ToolError as e:
                    tool_failures.append(f"{name} batch {b}: {e}")
                    print(f"{name:<30}{b:>6}  onevit infer FAILED")
                    continue
                for o in OUTPUTS:
                    ref = refs[o][:b]
                    got = np.load(outs[o]).astype(np.float64)
                    if got.shape != ref.shape:
                        failures.append(f"{name} batch {b} {o}: shape {got.shape}, expected {ref.shape}")
                        print(f"{name:<30}{b:>6}  {o:<8}shape {got.shape} != {ref.shape}  FAIL")
                        continue
                    check = parity(got, ref)
                    rows += 1
                    print(f"{name:<30}{b:>6}  {o:<8}{check.ref_max:>10.3f}{check.diff:>12.3e}{check.tol:>12.3e}  "
                          f"{'ok' if check.ok else 'FAIL'}", flush=True)
                    if not check.ok:
                        failures.append(f"{name} batch {b} {o}: max|Δ| {check.diff:.3e} > {check.tol:.3e} "
                                        f"({check.worst})")
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"total {time.time() - t_start:.1f}s")
    if tool_failures:
        print("FAIL: a tool failed:")
        for f in tool_failures:
            print("  " + f.replace("\n", "\n    "))
    if failures:
        print("FAIL: onevit disagrees with the seed models:")
        for f in failures:
            print("  " + f)
    if tool_failures:
        return 2
    if failures:
        return 1
    print(f"PASS: {rows} comparisons within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
