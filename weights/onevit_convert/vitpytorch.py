"""lucidrains vit-pytorch `ViT` before 2023 → canonical tensors.

    to_patch_embedding = Sequential(Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)'),
                                    Linear(patch_dim, dim))
    transformer.layers.N = [PreNorm(dim, Attention), PreNorm(dim, FeedForward)]
        PreNorm: .norm (LayerNorm, eps 1e-5), .fn
        Attention: to_qkv Linear(dim, 3·heads·dim_head, bias=False), scale dim_head ** -0.5,
                   to_out = Sequential(Linear(inner, dim), Dropout), or Identity when
                   heads == 1 and dim_head == dim
        FeedForward: net = Sequential(Linear, GELU (erf), Dropout, Linear, Dropout)
    pool: 'cls' → x[:, 0]; 'mean' → x.mean(dim=1), over all tokens, class token included
    mlp_head = Sequential(LayerNorm(dim), Linear(dim, num_classes)); no norm on the tokens.

Mapping: the patch Linear is permuted into a conv weight (vitpytorch_layout.py); mlp_head.0 →
head_norm, mlp_head.1 → head; no final norm.
"""

import re

from .errors import ConvertError
from .constructor_config import choice, int_pair, pos_int, constructor_preprocess, square_patch, take_kwargs
from .vitpytorch_layout import Collector, block_keys, class_token, linear_patch_weight, position_embedding, put_blocks
from .spec import ModelSpec
from .tensors import block_count, expect_keys

FAMILY = "vit-pytorch"
DESCRIPTION = ("vit-pytorch ViT before 2023 (to_patch_embedding.1.*, cls_token, pos_embedding, "
               "transformer.layers.N.0.{norm,fn.to_qkv,fn.to_out.0}.*, "
               "transformer.layers.N.1.{norm,fn.net.0,fn.net.3}.*, mlp_head.{0,1}.*)")
NEEDS_CONSTRUCTOR_CONFIG = True

_QKV = re.compile(r"transformer\.layers\.\d+\.0\.fn\.to_qkv\.weight")
_BLOCK = r"transformer\.layers\.(\d+)\."
BLOCK_NAMES = {"norm1": "0.norm", "qkv": "0.fn.to_qkv", "proj": "0.fn.to_out.0",
               "norm2": "1.norm", "fc1": "1.fn.net.0", "fc2": "1.fn.net.3"}


def matches(keys):
    return any(_QKV.fullmatch(k) for k in keys) or (
        "to_patch_embedding.1.weight" in keys and "to_patch_embedding.2.weight" not in keys)


def spec_from_kwargs(config, src):
    k = take_kwargs(config, FAMILY)
    path = config.path
    height, width = int_pair(path, "image_size", k["image_size"])
    channels = pos_int(path, "channels", k["channels"])
    dim, heads, dim_head = (pos_int(path, n, k[n]) for n in ("dim", "heads", "dim_head"))
    pool = choice(path, "pool", k["pool"], ("cls", "mean"))
    return ModelSpec(
        source=path, image_height=height, image_width=width, channels=channels,
        patch_size=square_patch(path, k["patch_size"]), dim=dim,
        depth=pos_int(path, "depth", k["depth"]), heads=heads, head_dim=dim_head,
        mlp_dim=pos_int(path, "mlp_dim", k["mlp_dim"]), norm_eps=1e-5, gelu="erf",
        preprocess=constructor_preprocess(config, height, width, channels),
        num_classes=pos_int(path, "num_classes", k["num_classes"]), prefix_tokens=1,
        qkv_bias=False, labels=config.labels, family=FAMILY,
        pool="token" if pool == "cls" else "mean",
        attn_proj=not (heads == 1 and dim_head == dim))


def check_projection(spec, has_projection, name):
    """The constructor's project_out = not (heads == 1 and dim_head == dim), against the weights."""
    if has_projection != spec.attn_proj:
        what = "has no to_out" if not spec.attn_proj else "has an output projection to_out"
        found = "has" if has_projection else "lacks"
        raise ConvertError(f"{spec.source} says heads={spec.heads}, dim_head={spec.head_dim}, "
                           f"dim={spec.dim}, so the attention {what} (project_out = not (heads == 1 "
                           f"and dim_head == dim)), but the checkpoint {found} {name}")


def to_canonical(src, spec):
    keys = set(src)
    depth = block_count(keys, _BLOCK, FAMILY)
    check_projection(spec, "transformer.layers.0.0.fn.to_out.0.weight" in keys,
                     "transformer.layers.0.0.fn.to_out.0.weight")
    required = ["to_patch_embedding.1.weight", "to_patch_embedding.1.bias", "cls_token",
                "pos_embedding", "mlp_head.0.weight", "mlp_head.0.bias", "mlp_head.1.weight",
                "mlp_head.1.bias"]
    required += block_keys(depth, BLOCK_NAMES, spec.attn_proj)
    expect_keys(keys, required, [], FAMILY)

    c = Collector(FAMILY, src)
    c.put("patch_embed.weight", "to_patch_embedding.1.weight",
          linear_patch_weight(c, "to_patch_embedding.1.weight", spec))
    c.put("patch_embed.bias", "to_patch_embedding.1.bias", ndim=1)
    c.put("prefix_tokens", "cls_token", class_token(c, "cls_token"))
    c.put("pos_embed", "pos_embedding", position_embedding(c, "pos_embedding"))
    # to_qkv(x).chunk(3) then 'b n (h d)': rows q, k, v, each head-major, as canonical.
    put_blocks(c, depth, BLOCK_NAMES, spec.attn_proj)
    for part in ("weight", "bias"):
        c.put(f"head_norm.{part}", f"mlp_head.0.{part}")
        c.put(f"head.{part}", f"mlp_head.1.{part}")
    return c.mapped(depth)
