"""lucidrains vit-pytorch's `ViT` → canonical tensors: its layout before 2023 (BEFORE_2023, family
vit-pytorch) and since 2023 (SINCE_2023, vit-pytorch-2023), one mapper with the differences as data.

Before 2023:
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

Since 2023:
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
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from .errors import ConvertError
from .constructor_config import choice, int_pair, pos_int, constructor_preprocess, square_patch, take_kwargs
from .vitpytorch_layout import (Collector, block_keys, class_token, linear_patch_weight, patch_vector,
                                position_embedding, put_blocks)
from .spec import ModelSpec
from .tensors import block_count, expect_keys

_BLOCK = r"transformer\.layers\.(\d+)\."


# eq=False: families.py keys dictionaries by family, so a layout hashes by identity.
@dataclass(frozen=True, eq=False)
class Layout:
    """One version of vit-pytorch's ViT, as families.py reads a family: FAMILY, DESCRIPTION,
    matches, spec_from_kwargs and to_canonical."""
    FAMILY: str
    DESCRIPTION: str
    block_names: Dict[str, str]   # canonical block layer → its name under transformer.layers.N.
    patch_linear: str             # the patch embedding's Linear
    patch_norms: Optional[Tuple[str, str]]  # LayerNorms before and after it (dual patch norm)
    patch_mark: Tuple[str, Optional[str]]   # a tensor that marks the layout, and one that must be absent
    outputs: Tuple[Tuple[str, str], ...]    # (canonical, checkpoint) layers after the blocks
    required: Tuple[str, ...]     # the tensors besides the blocks', in the order messages name them
    mlp_dim_ratio: bool           # the constructor takes mlp_dim_ratio, not mlp_dim
    mean_pool: str                # arch.pool for pool='mean'
    NEEDS_CONSTRUCTOR_CONFIG = True

    def matches(self, keys):
        qkv = re.compile(rf"transformer\.layers\.\d+\.{re.escape(self.block_names['qkv'])}\.weight")
        present, absent = self.patch_mark
        return any(qkv.fullmatch(k) for k in keys) or (present in keys and absent not in keys)

    def spec_from_kwargs(self, config, src):
        k = take_kwargs(config, self.FAMILY)
        path = config.path
        height, width = int_pair(path, "image_size", k["image_size"])
        channels = pos_int(path, "channels", k["channels"])
        dim, heads, dim_head = (pos_int(path, n, k[n]) for n in ("dim", "heads", "dim_head"))
        mlp_dim = _mlp_dim(path, k["mlp_dim_ratio"], dim) if self.mlp_dim_ratio else None
        pool = choice(path, "pool", k["pool"], ("cls", "mean"))
        return ModelSpec(
            source=path, image_height=height, image_width=width, channels=channels,
            patch_size=square_patch(path, k["patch_size"]), dim=dim,
            depth=pos_int(path, "depth", k["depth"]), heads=heads, head_dim=dim_head,
            mlp_dim=mlp_dim if self.mlp_dim_ratio else pos_int(path, "mlp_dim", k["mlp_dim"]),
            norm_eps=1e-5, gelu="erf", preprocess=constructor_preprocess(config, height, width, channels),
            num_classes=pos_int(path, "num_classes", k["num_classes"]), prefix_tokens=1,
            qkv_bias=False, labels=config.labels, family=self.FAMILY,
            pool="token" if pool == "cls" else self.mean_pool,
            attn_proj=not (heads == 1 and dim_head == dim))

    def to_canonical(self, src, spec):
        keys = set(src)
        depth = block_count(keys, _BLOCK, self.FAMILY)
        proj = f"transformer.layers.0.{self.block_names['proj']}.weight"
        _check_projection(spec, proj in keys, proj)
        expect_keys(keys, list(self.required) + block_keys(depth, self.block_names, spec.attn_proj), [],
                    self.FAMILY)

        c = Collector(self.FAMILY, src)
        linear = f"{self.patch_linear}.weight"
        c.put("patch_embed.weight", linear, linear_patch_weight(c, linear, spec))
        c.put("patch_embed.bias", f"{self.patch_linear}.bias", ndim=1)
        if self.patch_norms:
            norm_in, norm_out = self.patch_norms
            for part in ("weight", "bias"):
                name = f"{norm_in}.{part}"
                c.put(f"patch_embed.norm_in.{part}", name, patch_vector(c, name, spec))
                c.put(f"patch_embed.norm_out.{part}", f"{norm_out}.{part}")
        c.put("prefix_tokens", "cls_token", class_token(c, "cls_token"))
        c.put("pos_embed", "pos_embedding", position_embedding(c, "pos_embedding"))
        # to_qkv(x).chunk(3) then 'b n (h d)': rows q, k, v, each head-major, as canonical.
        put_blocks(c, depth, self.block_names, spec.attn_proj)
        for part in ("weight", "bias"):
            for canonical, name in self.outputs:
                c.put(f"{canonical}.{part}", f"{name}.{part}")
        return c.mapped(depth)


def _mlp_dim(path, ratio, dim):
    """Since 2023: nn.Linear(dim, mlp_dim_ratio * dim)."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0 or \
            ratio * dim != int(ratio * dim):
        raise ConvertError(f"{path}: mlp_dim_ratio must be a positive number with mlp_dim_ratio × "
                           f"dim an integer (nn.Linear(dim, mlp_dim_ratio * dim)), got {ratio!r}")
    return int(ratio * dim)


def _check_projection(spec, has_projection, name):
    """The constructor's project_out = not (heads == 1 and dim_head == dim), against the weights."""
    if has_projection != spec.attn_proj:
        what = "has no to_out" if not spec.attn_proj else "has an output projection to_out"
        found = "has" if has_projection else "lacks"
        raise ConvertError(f"{spec.source} says heads={spec.heads}, dim_head={spec.head_dim}, "
                           f"dim={spec.dim}, so the attention {what} (project_out = not (heads == 1 "
                           f"and dim_head == dim)), but the checkpoint {found} {name}")


def _weight_and_bias(*names):
    return tuple(f"{name}.{part}" for name in names for part in ("weight", "bias"))


BEFORE_2023 = Layout(
    FAMILY="vit-pytorch",
    DESCRIPTION=("vit-pytorch ViT before 2023 (to_patch_embedding.1.*, cls_token, pos_embedding, "
                 "transformer.layers.N.0.{norm,fn.to_qkv,fn.to_out.0}.*, "
                 "transformer.layers.N.1.{norm,fn.net.0,fn.net.3}.*, mlp_head.{0,1}.*)"),
    block_names={"norm1": "0.norm", "qkv": "0.fn.to_qkv", "proj": "0.fn.to_out.0",
                 "norm2": "1.norm", "fc1": "1.fn.net.0", "fc2": "1.fn.net.3"},
    patch_linear="to_patch_embedding.1", patch_norms=None,
    patch_mark=("to_patch_embedding.1.weight", "to_patch_embedding.2.weight"),
    outputs=(("head_norm", "mlp_head.0"), ("head", "mlp_head.1")),
    required=_weight_and_bias("to_patch_embedding.1") + ("cls_token", "pos_embedding") +
    _weight_and_bias("mlp_head.0", "mlp_head.1"),
    mlp_dim_ratio=False, mean_pool="mean")

SINCE_2023 = Layout(
    FAMILY="vit-pytorch-2023",
    DESCRIPTION=("vit-pytorch ViT after 2023 (to_patch_embedding.{1,2,3}.*, cls_token, pos_embedding, "
                 "transformer.layers.N.0.{norm,to_qkv,to_out.0}.*, "
                 "transformer.layers.N.1.net.{0,1,4}.*, transformer.norm.*, mlp_head.*)"),
    block_names={"norm1": "0.norm", "qkv": "0.to_qkv", "proj": "0.to_out.0",
                 "norm2": "1.net.0", "fc1": "1.net.1", "fc2": "1.net.4"},
    patch_linear="to_patch_embedding.2", patch_norms=("to_patch_embedding.1", "to_patch_embedding.3"),
    patch_mark=("to_patch_embedding.2.weight", None),
    outputs=(("norm", "transformer.norm"), ("head", "mlp_head")),
    required=("cls_token", "pos_embedding") + _weight_and_bias("transformer.norm", "mlp_head") +
    _weight_and_bias("to_patch_embedding.1", "to_patch_embedding.2", "to_patch_embedding.3"),
    mlp_dim_ratio=True, mean_pool="mean_patches")
