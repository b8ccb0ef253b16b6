"""The forward pass a model file describes — version 1 and the version 2 features — in float64.

Written from weights/FORMAT.md and the model-file contract for the 2025-26 ViTs
(notes/format-v2.md: rms_norm, embed_norm, no_pos_embed, qk_norm, rope, attn_norm, swiglu,
mlp_norm, post_norm, parallel), not from the converter or the engine: it reads the canonical
tensors and arch.* keys of a file (vit_reference.read_ovit) and computes what they mean.
tests/modern_test.py runs it on converted files against timm's own outputs, which proves the
converter's mapping and the contract before the engine runs a feature, and the engine's
outputs against timm once it does.

  x      = conv(image, patch_embed) → G tokens; embed_norm on each (embed_norm)
  x      = [prefix_tokens; x] + pos_embed (absent: no_pos_embed)
  x      = norm_pre(x)
  block  pre-norm:  h = norm1(x); a = attn(h); x += a;  x += mlp(norm2(x))
         parallel:  h = norm1(x); x += attn(h) + mlp(h)
         post_norm: x += norm1(attn(x)); x += norm2(mlp(x))
  attn   q, k, v = qkv(h) per head; q, k = q_norm(q), k_norm(k); rope on q and k
         (x·cos + r(x)·sin, r per arch.rope_layout); softmax(scale·q kᵀ) v; heads concatenated;
         attn.norm; proj
  mlp    fc1; gelu(arch.gelu) or silu(gate) ⊙ value (swiglu: fc1 rows gate, then value);
         mlp.norm; fc2
  norms  LayerNorm (x − mean)/sqrt(var + eps)·w + b, or RMSNorm x/sqrt(mean(x²) + eps)·w
then the final norm, pooling, head_norm and head of FORMAT.md.
"""

from __future__ import annotations

from typing import Dict, Mapping

import numpy as np
import torch
import torch.nn.functional as F


class Model:
    def __init__(self, meta: Mapping[str, object], tensors: Mapping[str, np.ndarray]):
        self.m = meta
        self.t = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in tensors.items()}
        self.features = set(meta.get("arch.features", []))
        self.eps = float(meta["arch.norm_eps"])

    def has(self, feature):
        return feature in self.features

    def norm(self, name, x):
        w = self.t[name + ".weight"]
        if self.has("rms_norm"):
            return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * w
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * w + self.t[name + ".bias"]

    def linear(self, name, x):
        y = x @ self.t[name + ".weight"].T
        bias = self.t.get(name + ".bias")
        return y if bias is None else y + bias

    def gelu(self, x):
        kind = self.m["arch.gelu"]
        if kind == "erf":
            return F.gelu(x)
        if kind == "tanh":
            return F.gelu(x, approximate="tanh")
        return x * torch.sigmoid(1.702 * x)

    def rope(self, block, x, heads_axis=True):
        """x [B, H, N, hd] rotated by the block's (or the model's) table."""
        if not self.has("rope"):
            return x
        if self.m["arch.rope_per_block"]:
            cos, sin = self.t[f"blocks.{block}.attn.rope.cos"], self.t[f"blocks.{block}.attn.rope.sin"]
        else:
            cos, sin = self.t["rope.cos"], self.t["rope.sin"]
        if self.m["arch.rope_layout"] == "half":
            half = x.shape[-1] // 2
            rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        else:
            rotated = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).reshape(x.shape)
        return x * cos + rotated * sin

    def attention(self, i, h):
        p = f"blocks.{i}.attn."
        heads, hd = int(self.m["arch.heads"]), int(self.m["arch.head_dim"])
        b, n, _ = h.shape
        q, k, v = self.linear(p + "qkv", h).reshape(b, n, 3, heads, hd).permute(2, 0, 3, 1, 4)
        if self.has("qk_norm"):
            q, k = self.norm(p + "q_norm", q), self.norm(p + "k_norm", k)
        q, k = self.rope(i, q), self.rope(i, k)
        scores = (q @ k.transpose(-2, -1)) * float(self.m["arch.attn_scale"])
        if self.has("rel_pos_bias"):
            scores = scores + self.t[p + "rel_pos_bias"]
        a = (torch.softmax(scores, dim=-1) @ v).permute(0, 2, 1, 3).reshape(b, n, heads * hd)
        if self.has("attn_norm"):
            a = self.norm(p + "norm", a)
        return self.linear(p + "proj", a) if self.m["arch.attn_proj"] else a

    def mlp(self, i, h):
        p = f"blocks.{i}.mlp."
        hidden = self.linear(p + "fc1", h)
        if self.has("swiglu"):
            gate, value = hidden.chunk(2, dim=-1)
            hidden = F.silu(gate) * value
        else:
            hidden = self.gelu(hidden)
        if self.has("mlp_norm"):
            hidden = self.norm(p + "norm", hidden)
        return self.linear(p + "fc2", hidden)

    def block(self, i, x):
        p = f"blocks.{i}."
        if self.has("post_norm"):
            x = x + self.norm(p + "norm1", self.attention(i, x))
            return x + self.norm(p + "norm2", self.mlp(i, x))
        h = self.norm(p + "norm1", x)
        if self.has("parallel"):
            return x + self.attention(i, h) + self.mlp(i, h)
        x = x + self.attention(i, h)
        return x + self.mlp(i, self.norm(p + "norm2", x))

    def tokens(self, images):
        w = self.t["patch_embed.weight"]
        x = F.conv2d(images, w, self.t["patch_embed.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
        if self.has("embed_norm"):
            x = self.norm("embed_norm", x)
        if "prefix_tokens" in self.t:
            x = torch.cat([self.t["prefix_tokens"].expand(x.shape[0], -1, -1), x], dim=1)
        if not self.has("no_pos_embed"):
            x = x + self.t["pos_embed"]
        if self.m.get("arch.norm_pre", 0):
            x = self.norm("norm_pre", x)
        for i in range(int(self.m["arch.depth"])):
            x = self.block(i, x)
        if self.m["arch.final_norm"]:
            x = self.norm("norm", x)
        return x

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """{"logits" (the embedding without a head), "embedding"} in float64."""
        x = self.tokens(images.to(torch.float64))
        prefix = int(self.m["arch.prefix_tokens"])
        pool = self.m["arch.pool"]
        if pool == "token":
            v = x[:, 0]
        elif pool == "mean":
            v = x.mean(1)
        elif pool == "mean_patches":
            v = x[:, prefix:].mean(1)
        else:
            # attn_pool_shape (proposed): arch.pool_prefix 1 attends over the prefix tokens too.
            pooled_from = 0 if self.has("attn_pool_shape") and self.m["arch.pool_prefix"] else prefix
            v = self.attention_pool(x[:, pooled_from:])
        if self.m["arch.head_norm"]:
            v = self.norm("head_norm", v)
        head = self.m["arch.head"]
        if head == "none":
            return {"logits": v, "embedding": v}
        if head == "distilled":
            logits = (self.linear("head", x[:, 0]) + self.linear("head_dist", x[:, 1])) / 2
            return {"logits": logits, "embedding": (x[:, 0] + x[:, 1]) / 2}
        if head == "mlp":
            return {"logits": self.linear("head", self.gelu(self.linear("head_hidden", v))), "embedding": v}
        return {"logits": self.linear("head", v), "embedding": v}

    def attention_pool(self, x):
        d = x.shape[-1]
        # attn_pool_shape (proposed, notes/format-v2-questions.md): the pool's own heads.
        heads = int(self.m["arch.pool_heads"] if self.has("attn_pool_shape") else self.m["arch.heads"])
        hd = d // heads
        b, n, _ = x.shape
        k, v = self.linear("attn_pool.kv", x).chunk(2, dim=-1)
        q = self.t["attn_pool.query"].reshape(1, heads, 1, hd)
        k = k.reshape(b, n, heads, hd).transpose(1, 2)
        v = v.reshape(b, n, heads, hd).transpose(1, 2)
        scale = hd ** -0.5 if self.has("attn_pool_shape") else float(self.m["arch.attn_scale"])
        a = torch.softmax((q @ k.transpose(-2, -1)) * scale, -1) @ v
        out = self.linear("attn_pool.proj", a.transpose(1, 2).reshape(b, d))
        return out + self.linear("attn_pool.fc2", self.gelu(self.linear("attn_pool.fc1",
                                                                         self.norm("attn_pool.norm", out))))


def forward(meta, tensors, images: np.ndarray) -> Dict[str, np.ndarray]:
    with torch.no_grad():
        out = Model(meta, tensors).forward(torch.from_numpy(images))
    return {k: v.numpy() for k, v in out.items()}
