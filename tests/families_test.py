#!/usr/bin/python3
"""One small random ViT saved as four checkpoint families must give one answer.

The same fixed-seed weights (image 32, patch 8, C=3, D=64, depth 2, 4 heads,
MLP 128, 10 classes) are written as

  * timm safetensors           (patch_embed.proj, cls_token, blocks.N.attn.qkv, ...)
  * timm .pth                  (torch.save of the same state dict)
  * Hugging Face safetensors   (ViTForImageClassification: vit.embeddings..., q/k/v split,
                                classifier)
  * Google .npz                (embedding/kernel HWIO, Transformer/encoderblock_N/...,
                                MultiHeadDotProductAttention_1/{query,key,value}/kernel [D,H,Dh])

and each is converted with the same Hugging Face style config.json
(`--config`; it fixes layer_norm_eps = 1e-5, erf GELU and the labels for every
family). Checks: the four .ovit files hold bit-identical tensors and the same
metadata (apart from arch.family and embedding), `onevit infer` gives bit-identical logits
for all four (np.array_equal), and those match tests/reference/vit_reference.py
(float64) within 1e-4 × max(1, max|ref|).

Usage:
    /usr/bin/python3 tests/families_test.py --onevit build/apps/onevit
Exit status: 0 pass, 1 a comparison failed, 2 a tool failed.
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import (REL_TOL, argument_parser, exit_status, parity, report,  # noqa: E402
                     resolve_converter, resolve_onevit, run_tool, scratch_dir)  # before torch

import numpy as np  # noqa: E402
import torch  # noqa: E402

from random_vit import random_vit_state  # noqa: E402
import safetensors_io  # noqa: E402
from hf_config import vit_config  # noqa: E402
import vit_reference  # noqa: E402

IMAGE, PATCH, CHANNELS = 32, 8, 3
DIM, DEPTH, HEADS, MLP, CLASSES = 64, 2, 4, 128, 10
EPS = 1e-5          # neither timm's 1e-6 nor HF's 1e-12 default: it must come from the config
BATCH = 2
SEED = 7


def hf_config() -> dict:
    return vit_config(dim=DIM, depth=DEPTH, heads=HEADS, mlp_dim=MLP, image_size=IMAGE, patch_size=PATCH,
                      channels=CHANNELS, eps=EPS, labels=[f"class_{i}" for i in range(CLASSES)])


def to_hf(sd: dict) -> dict:
    """timm names -> transformers ViTForImageClassification names."""
    d = DIM
    out = {
        "vit.embeddings.patch_embeddings.projection.weight": sd["patch_embed.proj.weight"],
        "vit.embeddings.patch_embeddings.projection.bias": sd["patch_embed.proj.bias"],
        "vit.embeddings.cls_token": sd["cls_token"],
        "vit.embeddings.position_embeddings": sd["pos_embed"],
        "vit.layernorm.weight": sd["norm.weight"],
        "vit.layernorm.bias": sd["norm.bias"],
        "classifier.weight": sd["head.weight"],
        "classifier.bias": sd["head.bias"],
    }
    for i in range(DEPTH):
        t, h = f"blocks.{i}.", f"vit.encoder.layer.{i}."
        qkv_w, qkv_b = sd[t + "attn.qkv.weight"], sd[t + "attn.qkv.bias"]
        for j, part in enumerate(("query", "key", "value")):
            out[h + f"attention.attention.{part}.weight"] = qkv_w[j * d:(j + 1) * d].clone()
            out[h + f"attention.attention.{part}.bias"] = qkv_b[j * d:(j + 1) * d].clone()
        pairs = {"layernorm_before": "norm1", "attention.output.dense": "attn.proj",
                 "layernorm_after": "norm2", "intermediate.dense": "mlp.fc1",
                 "output.dense": "mlp.fc2"}
        for hf_name, timm_name in pairs.items():
            out[h + hf_name + ".weight"] = sd[t + timm_name + ".weight"]
            out[h + hf_name + ".bias"] = sd[t + timm_name + ".bias"]
    return out


def to_google(sd: dict) -> dict:
    """timm names -> google-research/vision_transformer .npz names and layouts."""
    d, h = DIM, HEADS
    dh = d // h
    n = {k: v.numpy() for k, v in sd.items()}
    out = {
        "embedding/kernel": n["patch_embed.proj.weight"].transpose(2, 3, 1, 0),   # OIHW -> HWIO
        "embedding/bias": n["patch_embed.proj.bias"],
        "cls": n["cls_token"],
        "Transformer/posembed_input/pos_embedding": n["pos_embed"],
        "Transformer/encoder_norm/scale": n["norm.weight"],
        "Transformer/encoder_norm/bias": n["norm.bias"],
        "head/kernel": n["head.weight"].T,
        "head/bias": n["head.bias"],
    }
    for i in range(DEPTH):
        t, g = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        out[g + "LayerNorm_0/scale"] = n[t + "norm1.weight"]
        out[g + "LayerNorm_0/bias"] = n[t + "norm1.bias"]
        qkv_w, qkv_b = n[t + "attn.qkv.weight"], n[t + "attn.qkv.bias"]
        mha = g + "MultiHeadDotProductAttention_1/"
        for j, part in enumerate(("query", "key", "value")):
            out[mha + part + "/kernel"] = qkv_w[j * d:(j + 1) * d].T.reshape(d, h, dh)
            out[mha + part + "/bias"] = qkv_b[j * d:(j + 1) * d].reshape(h, dh)
        out[mha + "out/kernel"] = n[t + "attn.proj.weight"].T.reshape(h, dh, d)
        out[mha + "out/bias"] = n[t + "attn.proj.bias"]
        out[g + "LayerNorm_2/scale"] = n[t + "norm2.weight"]
        out[g + "LayerNorm_2/bias"] = n[t + "norm2.bias"]
        out[g + "MlpBlock_3/Dense_0/kernel"] = n[t + "mlp.fc1.weight"].T
        out[g + "MlpBlock_3/Dense_0/bias"] = n[t + "mlp.fc1.bias"]
        out[g + "MlpBlock_3/Dense_1/kernel"] = n[t + "mlp.fc2.weight"].T
        out[g + "MlpBlock_3/Dense_1/bias"] = n[t + "mlp.fc2.bias"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def main(argv=None) -> int:
    args = argument_parser("timm / .pth / HF / Google checkpoints agree", keep=True).parse_args(argv)
    repo = os.path.abspath(args.repo)
    onevit = resolve_onevit(args.onevit, repo)
    convert = resolve_converter(repo)

    grid = (IMAGE // PATCH) ** 2
    state = random_vit_state(DIM, DEPTH, mlp_dim=MLP, num_classes=CLASSES, channels=CHANNELS,
                             patch=PATCH, grid_tokens=grid, seed=SEED)
    cfg = vit_reference.ViTConfig(image_size=(IMAGE, IMAGE), patch_size=PATCH, in_chans=CHANNELS,
                                  embed_dim=DIM, depth=DEPTH, num_heads=HEADS, mlp_dim=MLP,
                                  num_classes=CLASSES, eps=EPS, gelu="erf")
    x = torch.randn((BATCH, CHANNELS, IMAGE, IMAGE), generator=torch.Generator().manual_seed(SEED + 1))
    with torch.no_grad():
        ref = vit_reference.from_timm_state_dict(state, cfg)(x.to(torch.float64)).numpy()
    ref_max = float(np.abs(ref).max())
    tol = REL_TOL * max(1.0, ref_max)

    failures = []
    with scratch_dir("onevit_families_", args.keep) as tmp:
        config = os.path.join(tmp, "config.json")
        with open(config, "w") as f:
            json.dump(hf_config(), f, indent=2)
        ckpts = {
            "timm safetensors": os.path.join(tmp, "timm.safetensors"),
            "timm .pth": os.path.join(tmp, "timm.pth"),
            "hf safetensors": os.path.join(tmp, "hf.safetensors"),
            "google .npz": os.path.join(tmp, "google.npz"),
        }
        safetensors_io.save_file(state, ckpts["timm safetensors"], metadata={"format": "pt"})
        torch.save(state, ckpts["timm .pth"])
        safetensors_io.save_file(to_hf(state), ckpts["hf safetensors"], metadata={"format": "pt"})
        np.savez(ckpts["google .npz"], **to_google(state))
        inp = os.path.join(tmp, "input.npy")
        np.save(inp, x.numpy())

        logits, files = {}, {}
        for family, ckpt in ckpts.items():
            model = os.path.splitext(ckpt)[0] + "_" + os.path.splitext(ckpt)[1][1:] + ".ovit"
            run_tool([sys.executable, convert, ckpt, "--config", config, "-o", model],
                     f"convert.py ({family})")
            files[family] = vit_reference.read_ovit(model)
            out = model + ".logits.npy"
            run_tool([onevit, "infer", "--model", model, "--input", inp, "--output", out],
                     f"onevit infer ({family})")
            logits[family] = np.load(out)

        # The converted files: same tensors, same metadata (the family name and the embedding's
        # description, in each library's terms, aside).
        base_family = "timm safetensors"
        base_meta, base_tensors = files[base_family]
        for family, (meta, tensors) in files.items():
            if abs(float(meta.get("arch.norm_eps", -1)) - EPS) > 1e-3 * EPS:
                failures.append(f"{family}: arch.norm_eps {meta.get('arch.norm_eps')}, config says {EPS}")
            if meta.get("arch.gelu") != "erf":
                failures.append(f"{family}: arch.gelu {meta.get('arch.gelu')!r}, config says erf")
            if meta.get("labels") != [f"class_{i}" for i in range(CLASSES)]:
                failures.append(f"{family}: labels {meta.get('labels')!r} are not the config's id2label")
            if family == base_family:
                continue
            for key in sorted(set(meta) | set(base_meta)):
                if key not in ("arch.family", "embedding") and meta.get(key) != base_meta.get(key):
                    failures.append(f"{family}: metadata {key} = {meta.get(key)!r}, "
                                    f"{base_family} has {base_meta.get(key)!r}")
            if set(tensors) != set(base_tensors):
                failures.append(f"{family}: tensor names differ from {base_family}: "
                                f"{sorted(set(tensors) ^ set(base_tensors))}")
            for name in sorted(set(tensors) & set(base_tensors)):
                if not np.array_equal(tensors[name], base_tensors[name]):
                    failures.append(f"{family}: tensor {name} differs from {base_family}")

        print(f"reference: max|logit| {ref_max:.3f}, tolerance {tol:.3e}")
        print(f"{'family':<20}{'shape':>10}{'max|Δ| vs ref':>16}{'identical to timm':>20}  result")
        base = logits[base_family]
        for family, got in logits.items():
            problems = []
            if got.shape != ref.shape:
                problems.append(f"logits shape {got.shape}, expected {ref.shape}")
                diff = float("nan")
            else:
                check = parity(got, ref)
                diff = check.diff
                if not check.ok:
                    problems.append(f"max|Δ| {diff:.3e} vs reference > tolerance {tol:.3e} ({check.worst})")
            same = got.shape == base.shape and np.array_equal(got, base)
            if not same:
                d = float(np.abs(got - base).max()) if got.shape == base.shape else float("nan")
                problems.append(f"logits not bit-identical to {base_family} (max|Δ| {d:.3e})")
            print(f"{family:<20}{str(tuple(got.shape)):>10}{diff:>16.3e}{str(same):>20}  "
                  f"{'ok' if not problems else 'FAIL'}")
            failures += [f"{family}: {p}" for p in problems]

    return report(failures, "checkpoint families disagree",
                  "timm safetensors, timm .pth, HF and Google .npz give bit-identical logits "
                  "matching the reference")


if __name__ == "__main__":
    sys.exit(exit_status(main))
