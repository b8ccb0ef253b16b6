"""FORMAT.md's forward pass in numpy (float32), for the layers a matched ONNX graph can have: the
converter runs the model it read and compares it with the graph's own outputs (onnx_vit.py)."""

import math

import numpy as np


def _erf(x):
    from .onnx_graph import _erf as erf
    return erf(x)


def _gelu(kind, x):
    if kind == "erf":
        return 0.5 * x * (1 + _erf(x / np.float32(math.sqrt(2))))
    if kind == "tanh":
        return 0.5 * x * (1 + np.tanh(np.float32(math.sqrt(2 / math.pi)) * (x + np.float32(0.044715) * x ** 3)))
    return x / (1 + np.exp(np.float32(-1.702) * x))


def _norm(t, name, x, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + np.float32(eps)) * t[name + ".weight"] + t[name + ".bias"]


def _linear(t, name, x):
    return x @ t[name + ".weight"].T + t[name + ".bias"]


def _attention_pool(arch, t, x):
    """map: the learned query attending over the patch tokens, then v + fc2(gelu(fc1(norm(v))))."""
    tokens = x[:, arch.prefix_tokens:]
    b, n = tokens.shape[:2]
    kv = _linear(t, "attn_pool.kv", tokens)
    inner = kv.shape[-1] // 2
    heads = arch.heads
    k, v = (kv[..., j * inner:(j + 1) * inner].reshape(b, n, heads, inner // heads).transpose(0, 2, 1, 3)
            for j in range(2))
    q = t["attn_pool.query"].reshape(heads, 1, inner // heads)
    s = (q @ k.transpose(0, 1, 3, 2)) * np.float32(arch.attn_scale)
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    a = ((s / s.sum(axis=-1, keepdims=True)) @ v).reshape(b, inner)
    v = _linear(t, "attn_pool.proj", a)
    return v + _linear(t, "attn_pool.fc2", _gelu(arch.gelu, _linear(t, "attn_pool.fc1",
                                                                    _norm(t, "attn_pool.norm", v, arch.norm_eps))))


def forward(arch, tensors, image):
    """{"tokens" (after the final norm), "embedding", "logits" (None without a head)} for image [B, C, H, W]."""
    t = dict(tensors)
    p = arch.patch_size
    b, c, h, w = image.shape
    gh, gw = h // p, w // p
    patches = image.reshape(b, c, gh, p, gw, p).transpose(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c * p * p)
    x = patches @ t["patch_embed.weight"].reshape(arch.dim, -1).T + t["patch_embed.bias"]
    if arch.prefix_tokens:
        x = np.concatenate([np.broadcast_to(t["prefix_tokens"], (b,) + t["prefix_tokens"].shape), x], axis=1)
    x = x + t["pos_embed"]
    if arch.norm_pre:
        x = _norm(t, "norm_pre", x, arch.norm_eps)
    heads, hd = arch.heads, arch.head_dim
    n = x.shape[1]
    for i in range(arch.depth):
        k = f"blocks.{i}."
        qkv = _linear(t, k + "attn.qkv", _norm(t, k + "norm1", x, arch.norm_eps))
        q, kk, v = (qkv[..., j * heads * hd:(j + 1) * heads * hd].reshape(b, n, heads, hd).transpose(0, 2, 1, 3)
                    for j in range(3))
        # Contiguous heads: numpy multiplies strided stacks without BLAS, tens of times slower.
        q, kk, v = (np.ascontiguousarray(t_) for t_ in (q, kk, v))
        s = (q @ kk.transpose(0, 1, 3, 2)) * np.float32(arch.attn_scale)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        a = ((s / s.sum(axis=-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(b, n, heads * hd)
        x = x + _linear(t, k + "attn.proj", a)
        x = x + _linear(t, k + "mlp.fc2", _gelu(arch.gelu, _linear(t, k + "mlp.fc1",
                                                                  _norm(t, k + "norm2", x, arch.norm_eps))))
    if arch.final_norm:
        x = _norm(t, "norm", x, arch.norm_eps)
    first = arch.prefix_tokens
    pooled = {"token": lambda: x[:, 0], "mean": lambda: x.mean(axis=1), "map": lambda: _attention_pool(arch, t, x),
              "mean_patches": lambda: x[:, first:].mean(axis=1),
              "token_and_mean_patches": lambda: np.concatenate([x[:, 0], x[:, first:].mean(axis=1)], axis=-1)}
    v = pooled[arch.pool]()
    if arch.head_norm:
        v = _norm(t, "head_norm", v, arch.norm_eps)
    if arch.pool_proj:
        v = _linear(t, "pool_proj", v)
        if arch.pool_proj_act == "tanh":
            v = np.tanh(v)
    logits = _linear(t, "head", v) if arch.head == "linear" else None
    return {"tokens": x, "embedding": v, "logits": logits}
