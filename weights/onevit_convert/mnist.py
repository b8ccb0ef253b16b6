"""An MNIST ViT of an early vit-pytorch (patch_to_embedding, Residual(PreNorm(...)) blocks, an MLP
head) → canonical tensors.

    x = rearrange(img, 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'); patch_to_embedding Linear
    x = cat(cls_token, x) + pos_embedding   (the whole table, no slicing)
    transformer.layers.N = [Residual(PreNorm(dim, Attention)), Residual(PreNorm(dim, FeedForward))]
        PreNorm: .fn.norm (LayerNorm, eps 1e-5), .fn.fn
        Attention: to_qkv Linear(dim, 3·dim, bias=False) split 'b n (qkv h d) -> qkv b h n d'
                   (rows q, k, v, each head-major: the canonical order), scores scaled by
                   dim ** -0.5 (the model width, not the head width: reproduced through
                   arch.attn_scale), to_out a plain Linear(dim, dim)
        FeedForward: net = Sequential(Linear, GELU (erf), Linear)
    x[:, 0] (no final norm) → mlp_head = Sequential(Linear(dim, mlp_dim), GELU, Linear(mlp_dim, K))

Mapping: mlp_head.0 → head_hidden, mlp_head.2 → head (arch.head = mlp, head_hidden = mlp_dim).
"""

import re

from .errors import ConvertError
from .constructor_config import pos_int, constructor_preprocess, take_kwargs
from .vitpytorch_layout import Collector, block_keys, class_token, linear_patch_weight, position_embedding, put_blocks
from .spec import ModelSpec
from .tensors import block_count, expect_keys

FAMILY = "mnist-vit"
DESCRIPTION = ("MNIST ViT (patch_to_embedding.*, cls_token, pos_embedding, "
               "transformer.layers.N.0.fn.{norm,fn.to_qkv,fn.to_out}.*, "
               "transformer.layers.N.1.fn.{norm,fn.net.0,fn.net.2}.*, mlp_head.{0,2}.*)")
NEEDS_CONSTRUCTOR_CONFIG = True

_QKV = re.compile(r"transformer\.layers\.\d+\.0\.fn\.fn\.to_qkv\.weight")
_BLOCK = r"transformer\.layers\.(\d+)\."
BLOCK_NAMES = {"norm1": "0.fn.norm", "qkv": "0.fn.fn.to_qkv", "proj": "0.fn.fn.to_out",
               "norm2": "1.fn.norm", "fc1": "1.fn.fn.net.0", "fc2": "1.fn.fn.net.2"}


def matches(keys):
    return "patch_to_embedding.weight" in keys or any(_QKV.fullmatch(k) for k in keys)


def spec_from_kwargs(config, src):
    k = take_kwargs(config, FAMILY)
    path = config.path
    # This constructor takes plain integers: `image_size % patch_size`, `(image_size // patch_size) ** 2`.
    size = pos_int(path, "image_size", k["image_size"])
    patch = pos_int(path, "patch_size", k["patch_size"])
    channels = pos_int(path, "channels", k["channels"])
    dim, heads = pos_int(path, "dim", k["dim"]), pos_int(path, "heads", k["heads"])
    if dim % heads:
        raise ConvertError(f"{path}: dim {dim} is not a multiple of heads {heads}: the "
                           f"'b n (qkv h d)' split of to_qkv needs it")
    mlp_dim = pos_int(path, "mlp_dim", k["mlp_dim"])
    return ModelSpec(
        source=path, image_height=size, image_width=size, channels=channels, patch_size=patch,
        dim=dim, depth=pos_int(path, "depth", k["depth"]), heads=heads, head_dim=dim // heads,
        mlp_dim=mlp_dim, norm_eps=1e-5, gelu="erf",
        preprocess=constructor_preprocess(config, size, size, channels),
        num_classes=pos_int(path, "num_classes", k["num_classes"]), prefix_tokens=1,
        qkv_bias=False, labels=config.labels, family=FAMILY, pool="token",
        attn_scale=dim ** -0.5, attn_proj=True, head_hidden=mlp_dim)


def to_canonical(src, spec):
    keys = set(src)
    depth = block_count(keys, _BLOCK, FAMILY)
    required = ["patch_to_embedding.weight", "patch_to_embedding.bias", "cls_token", "pos_embedding",
                "mlp_head.0.weight", "mlp_head.0.bias", "mlp_head.2.weight", "mlp_head.2.bias"]
    required += block_keys(depth, BLOCK_NAMES, attn_proj=True)
    expect_keys(keys, required, [], FAMILY)

    c = Collector(FAMILY, src)
    c.put("patch_embed.weight", "patch_to_embedding.weight",
          linear_patch_weight(c, "patch_to_embedding.weight", spec))
    c.put("patch_embed.bias", "patch_to_embedding.bias", ndim=1)
    c.put("prefix_tokens", "cls_token", class_token(c, "cls_token"))
    c.put("pos_embed", "pos_embedding", position_embedding(c, "pos_embedding"))
    put_blocks(c, depth, BLOCK_NAMES, attn_proj=True)  # to_out is always there
    for part in ("weight", "bias"):
        c.put(f"head_hidden.{part}", f"mlp_head.0.{part}")
        c.put(f"head.{part}", f"mlp_head.2.{part}")
    return c.mapped(depth)
