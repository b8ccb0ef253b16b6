"""The forward pass of weights/FORMAT.md over a file's canonical tensors, in float64.

Written from FORMAT.md's "The forward pass these tensors describe", not from the engine:
what the engine must compute for a given set of `arch.*` keys. It covers the layers the
pooled-vector tests need (tests/pooled_outputs_test.py): token/mean/mean_patches pooling and
token_and_mean_patches,
head_norm, pool_proj with its activation, and the linear, MLP and absent heads, on top of
the plain pre-norm blocks (qkv bias or not, attention projection, norm_pre, final norm).
"""

from __future__ import annotations

from typing import Dict, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from vit_reference import layer_norm


def _linear(t, name, x):
    return x @ t[name + ".weight"].t() + t[name + ".bias"]


def _norm(t, name, x, eps):
    return layer_norm(x, t[name + ".weight"], t[name + ".bias"], eps)


def _act(kind, x):
    if kind == "erf":
        return F.gelu(x)
    if kind == "tanh":
        return F.gelu(x, approximate="tanh")
    if kind == "quick":
        return x * torch.sigmoid(1.702 * x)
    raise ValueError(f"arch.gelu {kind!r}")


def forward(meta: Mapping[str, object], tensors: Mapping[str, np.ndarray],
            images: np.ndarray) -> Dict[str, np.ndarray]:
    """{"output": logits, or the embedding without a head, "embedding"} for NCHW float images."""
    for key in ("arch.patch_norm",):
        if meta.get(key):
            raise ValueError(f"{key} is not covered by this reference")
    if meta["arch.pool"] == "map" or meta["arch.head"] == "distilled":
        raise ValueError("attention pooling and distilled heads are not covered by this reference")
    t = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in tensors.items()}
    eps, gelu = float(meta["arch.norm_eps"]), str(meta["arch.gelu"])
    heads, head_dim = int(meta["arch.heads"]), int(meta["arch.head_dim"])
    prefix, patch = int(meta["arch.prefix_tokens"]), int(meta["arch.patch_size"])
    x = torch.from_numpy(images.astype(np.float64))
    x = F.conv2d(x, t["patch_embed.weight"], t["patch_embed.bias"], stride=patch).flatten(2).transpose(1, 2)
    b = x.shape[0]
    if prefix:
        x = torch.cat([t["prefix_tokens"].expand(b, -1, -1), x], dim=1)
    x = x + t["pos_embed"]
    if meta.get("arch.norm_pre"):
        x = _norm(t, "norm_pre", x, eps)
    n = x.shape[1]
    inner = heads * head_dim
    for i in range(int(meta["arch.depth"])):
        p = f"blocks.{i}."
        h = _norm(t, p + "norm1", x, eps)
        qkv = h @ t[p + "attn.qkv.weight"].t()
        if meta["arch.qkv_bias"]:
            qkv = qkv + t[p + "attn.qkv.bias"]
        q, k, v = (qkv[..., j * inner:(j + 1) * inner].reshape(b, n, heads, head_dim).transpose(1, 2)
                   for j in range(3))
        probs = torch.softmax(float(meta["arch.attn_scale"]) * q @ k.transpose(-2, -1), dim=-1)
        a = (probs @ v).transpose(1, 2).reshape(b, n, inner)
        x = x + (_linear(t, p + "attn.proj", a) if meta["arch.attn_proj"] else a)
        x = x + _linear(t, p + "mlp.fc2", _act(gelu, _linear(t, p + "mlp.fc1", _norm(t, p + "norm2", x, eps))))
    if meta["arch.final_norm"]:
        x = _norm(t, "norm", x, eps)
    pool = meta["arch.pool"]
    if pool == "token":
        v = x[:, 0]
    elif pool == "mean":
        v = x.mean(dim=1)
    elif pool == "mean_patches":
        v = x[:, prefix:].mean(dim=1)
    elif pool == "token_and_mean_patches":
        v = torch.cat([x[:, 0], x[:, prefix:].mean(dim=1)], dim=1)
    else:
        raise ValueError(f"arch.pool {pool!r}")
    if meta["arch.head_norm"]:
        v = _norm(t, "head_norm", v, eps)
    if meta.get("arch.pool_proj", 0):
        v = _linear(t, "pool_proj", v)
        act = meta.get("arch.pool_proj_act", "none")
        if act == "tanh":
            v = torch.tanh(v)
        elif act != "none":
            raise ValueError(f"arch.pool_proj_act {act!r}")
    head = meta["arch.head"]
    if head == "none":
        out = v
    elif head == "linear":
        out = _linear(t, "head", v)
    elif head == "mlp":
        out = _linear(t, "head", _act(gelu, _linear(t, "head_hidden", v)))
    else:
        raise ValueError(f"arch.head {head!r}")
    return {"output": out.numpy(), "embedding": v.numpy()}
