"""The project's own PyTorch reference for the timm ViT variants of the zoo (issue 14).

Written from the descriptions of the models (DeiT-III, DINOv2 and its register tokens,
CLIP, SigLIP's attention-pooling head) as timm's vision_transformer.py and
attention_pool.py read, *not* from onevit's converter or engine, and functional: a
forward pass over a dict of timm-named tensors, in float64. The pieces follow the
models step by step:

  patches  = conv(image, patch_embed.proj) (no bias in CLIP), row-major over the grid
  tokens   = [cls_token?, reg_token × R?, patches]; pos_embed is added to every token, or
             (no_embed_class: DeiT-III, DINOv2-reg) to the patches only, before the concat
  tokens   = LN(tokens, norm_pre)                          CLIP (pre_norm)
  block    x += ls1 · proj(attention(LN1 x));  x += ls2 · fc2(act(fc1(LN2 x)))
           act: exact GELU, its tanh form, or QuickGELU x·sigmoid(1.702x); ls: LayerScale
  x        = LN(x, norm)                                   unless there is fc_norm
  pooled   = x[:, 0] (token) | mean of x[:, T:] (avg, prefix tokens excluded)
           | MAP: a learned latent, through q, attends over x[:, T:] (k, v from kv),
             heads concatenated, proj, then pooled += fc2(act(fc1(LN(pooled, attn_pool.norm))))
  pooled   = LN(pooled, fc_norm)                           avg models with fc_norm
  logits   = head(pooled)                                  none when num_classes is 0

LayerNorm is vit_reference.layer_norm ((x − mean)/sqrt(var + eps)·w + b); attention is
softmax(q kᵀ / sqrt(head_dim)) v per head, written out.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import torch
import torch.nn.functional as F

from vit_reference import layer_norm


@dataclasses.dataclass
class ZooConfig:
    heads: int
    eps: float = 1e-6
    act: str = "erf"               # "erf" | "tanh" | "quick"
    no_embed_class: bool = False
    global_pool: str = "token"     # "token" | "avg" | "map"


def _linear(sd: Dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    y = x @ sd[name + ".weight"].t()
    bias = sd.get(name + ".bias")
    return y if bias is None else y + bias


def _act(cfg: ZooConfig, x: torch.Tensor) -> torch.Tensor:
    if cfg.act == "erf":
        return F.gelu(x)
    if cfg.act == "tanh":
        return F.gelu(x, approximate="tanh")
    if cfg.act == "quick":
        return x * torch.sigmoid(1.702 * x)
    raise ValueError(f"unknown activation {cfg.act!r}")


def _norm(sd, name, x, eps):
    return layer_norm(x, sd[name + ".weight"], sd[name + ".bias"], eps)


def _heads_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """q [B, Nq, D], k and v [B, N, D] → [B, Nq, D]: softmax(q_h k_hᵀ / sqrt(Dh)) v_h per head."""
    b, nq, d = q.shape
    dh = d // heads

    def split(t):
        return t.reshape(b, t.shape[1], heads, dh).permute(0, 2, 1, 3)

    scores = split(q) @ split(k).transpose(-2, -1) * dh ** -0.5
    weights = torch.softmax(scores, dim=-1)
    return (weights @ split(v)).permute(0, 2, 1, 3).reshape(b, nq, d)


def _block(sd, cfg, i, x):
    p = f"blocks.{i}."
    h = _norm(sd, p + "norm1", x, cfg.eps)
    qkv = _linear(sd, p + "attn.qkv", h)
    q, k, v = qkv.chunk(3, dim=-1)
    a = _linear(sd, p + "attn.proj", _heads_attention(q, k, v, cfg.heads))
    if p + "ls1.gamma" in sd:
        a = a * sd[p + "ls1.gamma"]
    x = x + a
    m = _linear(sd, p + "mlp.fc2", _act(cfg, _linear(sd, p + "mlp.fc1", _norm(sd, p + "norm2", x, cfg.eps))))
    if p + "ls2.gamma" in sd:
        m = m * sd[p + "ls2.gamma"]
    return x + m


def _attention_pool(sd, cfg, patches):
    b, _, d = patches.shape
    latent = sd["attn_pool.latent"].expand(b, -1, -1)               # [B, 1, D]
    q = _linear(sd, "attn_pool.q", latent)
    k, v = _linear(sd, "attn_pool.kv", patches).chunk(2, dim=-1)    # k: first D columns
    pooled = _linear(sd, "attn_pool.proj", _heads_attention(q, k, v, cfg.heads))
    hidden = _act(cfg, _linear(sd, "attn_pool.mlp.fc1", _norm(sd, "attn_pool.norm", pooled, cfg.eps)))
    pooled = pooled + _linear(sd, "attn_pool.mlp.fc2", hidden)
    return pooled[:, 0]


def forward(sd: Dict[str, torch.Tensor], cfg: ZooConfig, images: torch.Tensor) -> Dict[str, Optional[torch.Tensor]]:
    """{"logits" (None without a head), "embedding", "cls" (None without a class token), "tokens"}."""
    weight = sd["patch_embed.proj.weight"]
    x = F.conv2d(images, weight, sd.get("patch_embed.proj.bias"), stride=weight.shape[-1])
    x = x.flatten(2).transpose(1, 2)
    b = x.shape[0]
    prefix = [sd[n].expand(b, -1, -1) for n in ("cls_token", "reg_token") if n in sd]
    if cfg.no_embed_class:
        x = torch.cat(prefix + [x + sd["pos_embed"]], dim=1)
    else:
        x = torch.cat(prefix + [x], dim=1) + sd["pos_embed"]
    t = sum(p.shape[1] for p in prefix)
    if "norm_pre.weight" in sd:
        x = _norm(sd, "norm_pre", x, cfg.eps)
    depth = 0
    while f"blocks.{depth}.norm1.weight" in sd:
        x = _block(sd, cfg, depth, x)
        depth += 1
    if "norm.weight" in sd:
        x = _norm(sd, "norm", x, cfg.eps)
    if cfg.global_pool == "token":
        pooled = x[:, 0]
    elif cfg.global_pool == "avg":
        pooled = x[:, t:].mean(dim=1)
    elif cfg.global_pool == "map":
        pooled = _attention_pool(sd, cfg, x[:, t:])
    else:
        raise ValueError(f"unknown global_pool {cfg.global_pool!r}")
    if "fc_norm.weight" in sd:
        pooled = _norm(sd, "fc_norm", pooled, cfg.eps)
    return {"logits": _linear(sd, "head", pooled) if "head.weight" in sd else None,
            "embedding": pooled,
            "cls": x[:, 0] if "cls_token" in sd else None,
            "tokens": x[:, t:]}
