"""vit-pytorch's ViT since 2023 → canonical tensors.

    to_patch_embedding = Sequential(Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)'),
                                    LayerNorm(patch_dim), Linear(patch_dim, dim), LayerNorm(dim))
    transformer.layers.N = [Attention, FFN], each with its own norm:
        Attention: norm (LayerNorm), to_qkv (no bias), to_out = Sequential(Linear, Dropout)
                   or Identity when heads == 1 and dim_head == dim; scale dim_head ** -0.5
        FFN: net = Sequential(LayerNorm, Linear, GELU, Dropout, Linear, Dropout)
    transformer.norm: LayerNorm applied to every token after the last block
    mlp_head = Linear(dim, num_classes); mlp_dim = mlp_dim_ratio * dim; LayerNorm eps 1e-5.
    forward returns the class token x[:, 0], the feature map x[:, 1:] (both after
    transformer.norm) and the logits of mlp_head on the pooled vector.

Mapping: "dual patch norm" (arch.patch_norm = 1): to_patch_embedding.1 → patch_embed.norm_in
(permuted to the (c, y, x) order, vitpytorch_layout.py), .2 → patch_embed (permuted), .3 →
patch_embed.norm_out; transformer.norm → norm (arch.final_norm = 1); mlp_head → head.

pool='mean' averages the feature map only (`feature_map.mean(dim=1)`, the class token
left out): arch.pool = mean_patches.
"""

import re

from .errors import ConvertError
from .constructor_config import choice, int_pair, pos_int, constructor_preprocess, square_patch, take_kwargs
from .vitpytorch_layout import (Collector, block_keys, class_token, linear_patch_weight, patch_vector,
                      position_embedding, put_blocks)
from .spec import ModelSpec
from .tensors import block_count, expect_keys
from .vitpytorch import check_projection

FAMILY = "vit-pytorch-2023"
DESCRIPTION = ("vit-pytorch ViT after 2023 (to_patch_embedding.{1,2,3}.*, cls_token, pos_embedding, "
               "transformer.layers.N.0.{norm,to_qkv,to_out.0}.*, "
               "transformer.layers.N.1.net.{0,1,4}.*, transformer.norm.*, mlp_head.*)")
NEEDS_CONSTRUCTOR_CONFIG = True

_QKV = re.compile(r"transformer\.layers\.\d+\.0\.to_qkv\.weight")
_BLOCK = r"transformer\.layers\.(\d+)\."
BLOCK_NAMES = {"norm1": "0.norm", "qkv": "0.to_qkv", "proj": "0.to_out.0",
               "norm2": "1.net.0", "fc1": "1.net.1", "fc2": "1.net.4"}


def matches(keys):
    return any(_QKV.fullmatch(k) for k in keys) or "to_patch_embedding.2.weight" in keys


def spec_from_kwargs(config, src):
    k = take_kwargs(config, FAMILY)
    path = config.path
    height, width = int_pair(path, "image_size", k["image_size"])
    channels = pos_int(path, "channels", k["channels"])
    dim, heads, dim_head = (pos_int(path, n, k[n]) for n in ("dim", "heads", "dim_head"))
    ratio = k["mlp_dim_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0 or \
            ratio * dim != int(ratio * dim):
        raise ConvertError(f"{path}: mlp_dim_ratio must be a positive number with mlp_dim_ratio × "
                           f"dim an integer (nn.Linear(dim, mlp_dim_ratio * dim)), got {ratio!r}")
    pool = choice(path, "pool", k["pool"], ("cls", "mean"))
    return ModelSpec(
        source=path, image_height=height, image_width=width, channels=channels,
        patch_size=square_patch(path, k["patch_size"]), dim=dim,
        depth=pos_int(path, "depth", k["depth"]), heads=heads, head_dim=dim_head,
        mlp_dim=int(ratio * dim), norm_eps=1e-5, gelu="erf",
        preprocess=constructor_preprocess(config, height, width, channels),
        num_classes=pos_int(path, "num_classes", k["num_classes"]), prefix_tokens=1,
        qkv_bias=False, labels=config.labels, family=FAMILY,
        pool="token" if pool == "cls" else "mean_patches",
        attn_proj=not (heads == 1 and dim_head == dim))


def to_canonical(src, spec):
    keys = set(src)
    depth = block_count(keys, _BLOCK, FAMILY)
    check_projection(spec, "transformer.layers.0.0.to_out.0.weight" in keys,
                     "transformer.layers.0.0.to_out.0.weight")
    required = ["cls_token", "pos_embedding", "transformer.norm.weight", "transformer.norm.bias",
                "mlp_head.weight", "mlp_head.bias"]
    required += [f"to_patch_embedding.{i}.{part}" for i in (1, 2, 3) for part in ("weight", "bias")]
    required += block_keys(depth, BLOCK_NAMES, spec.attn_proj)
    expect_keys(keys, required, [], FAMILY)

    c = Collector(FAMILY, src)
    c.put("patch_embed.weight", "to_patch_embedding.2.weight",
          linear_patch_weight(c, "to_patch_embedding.2.weight", spec))
    c.put("patch_embed.bias", "to_patch_embedding.2.bias", ndim=1)
    for part in ("weight", "bias"):
        name = f"to_patch_embedding.1.{part}"
        c.put(f"patch_embed.norm_in.{part}", name, patch_vector(c, name, spec))
        c.put(f"patch_embed.norm_out.{part}", f"to_patch_embedding.3.{part}")
    c.put("prefix_tokens", "cls_token", class_token(c, "cls_token"))
    c.put("pos_embed", "pos_embedding", position_embedding(c, "pos_embedding"))
    put_blocks(c, depth, BLOCK_NAMES, spec.attn_proj)
    for part in ("weight", "bias"):
        c.put(f"norm.{part}", f"transformer.norm.{part}")
        c.put(f"head.{part}", f"mlp_head.{part}")
    return c.mapped(depth)
