"""FORMAT.md's forward pass in numpy (float32), for the layers a matched ONNX graph can have, in
its stages (embedding, each block, tail): the converter runs each stage of the model it read on the
graph's own input to that stage and compares it with the graph's own output (onnx_source.py)."""

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


def embed(arch, t, image):
    """The token sequence [B, N, D] entering the first block, for image [B, C, H, W]."""
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
    return x


def _heads(x, heads, hd):
    """[B, N, H·Dh] → contiguous [B, H, N, Dh]: numpy multiplies strided stacks without BLAS, tens
    of times slower."""
    b, n = x.shape[:2]
    return np.ascontiguousarray(x.reshape(b, n, heads, hd).transpose(0, 2, 1, 3))


def block(arch, t, i, x, rows=None):
    """Block i on the tokens x [B, N, D]: its output for the token rows `rows` (all when None).
    Every token is a key and a value; only the rows asked for are queries and go through the MLP."""
    k = f"blocks.{i}."
    heads, hd = arch.heads, arch.head_dim
    inner = heads * hd
    h = _norm(t, k + "norm1", x, arch.norm_eps)
    x, hq = (x, h) if rows is None else (x[:, rows], h[:, rows])
    w, bias = t[k + "attn.qkv.weight"], t[k + "attn.qkv.bias"]
    q = _heads(hq @ w[:inner].T + bias[:inner], heads, hd)
    kv = h @ w[inner:].T + bias[inner:]
    kk, v = _heads(kv[..., :inner], heads, hd), _heads(kv[..., inner:], heads, hd)
    s = (q @ kk.transpose(0, 1, 3, 2)) * np.float32(arch.attn_scale)
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    a = ((s / s.sum(axis=-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], inner)
    x = x + _linear(t, k + "attn.proj", a)
    return x + _linear(t, k + "mlp.fc2", _gelu(arch.gelu, _linear(t, k + "mlp.fc1",
                                                                 _norm(t, k + "norm2", x, arch.norm_eps))))


def tail(arch, t, x):
    """{"tokens" (after the final norm), "embedding", "logits" (None without a head)} from the
    last block's output x [B, N, D]."""
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
