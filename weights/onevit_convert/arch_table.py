"""The --arch table: timm model names → architecture and timm's eval preprocessing.

Numbers from timm's vision_transformer.py / deit.py model definitions and
pretrained configs (reference-facts 3.1, 3.6). `mlp_ratio` 4, LayerNorm eps 1e-6
and exact (erf) GELU hold for every entry.
"""

import re
from dataclasses import dataclass
from typing import Optional, Tuple

from .errors import ConvertError
from .preprocess import timm_eval
from .spec import ModelSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)   # timm's IMAGENET_INCEPTION_MEAN/STD, used by the augreg ViTs
INCEPTION_STD = (0.5, 0.5, 0.5)

# size name → (embed dim, depth, heads)
_VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12),
              "large": (1024, 24, 16)}
_DEIT_SIZES = {k: _VIT_SIZES[k] for k in ("tiny", "small", "base")}


@dataclass(frozen=True)
class TimmSettings:
    """A timm model's construction and eval settings; a config.json may override any of them."""
    dim: int
    depth: int
    heads: int
    patch_size: int
    image_height: int
    image_width: int
    channels: int = 3
    mlp_ratio: float = 4.0
    distilled: bool = False
    crop_pct: float = 0.9
    crop_mode: Optional[str] = "center"
    interpolation: str = "bicubic"
    mean: Tuple[float, ...] = INCEPTION_MEAN
    std: Tuple[float, ...] = INCEPTION_STD


def _build_table():
    table = {}
    for size, (dim, depth, heads) in _VIT_SIZES.items():
        for patch in (16, 32):
            for image in (224, 384):
                # augreg ViTs: crop_pct 0.9 at 224 (resize 248), 1.0 at 384 (resize 384).
                table[f"vit_{size}_patch{patch}_{image}"] = TimmSettings(
                    dim, depth, heads, patch, image, image, crop_pct=0.9 if image == 224 else 1.0)
    for size, (dim, depth, heads) in _DEIT_SIZES.items():
        for distilled in (False, True):
            name = f"deit_{size}_{'distilled_' if distilled else ''}patch16_224"
            # DeiT's own eval: Resize(256) = 224 / 0.875, bicubic, ImageNet mean/std.
            table[name] = TimmSettings(dim, depth, heads, 16, 224, 224, distilled=distilled,
                                       crop_pct=0.875, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return table


TABLE = _build_table()


def lookup(name, source):
    """Settings for a timm name; a pretrained tag (`vit_base_patch16_224.augreg_in1k`) is ignored."""
    base = re.sub(r"\..*$", "", name.strip())
    base = re.sub(r"^timm/", "", base)
    if base not in TABLE:
        raise ConvertError(f"{source}: unknown architecture {name!r}; known: {', '.join(sorted(TABLE))}")
    return TABLE[base]


def to_spec(settings, source, **extra):
    """ModelSpec from (possibly overridden) timm settings; `extra` sets the optional fields."""
    s = settings
    if s.dim % s.heads:
        raise ConvertError(f"{source}: embed dim {s.dim} is not a multiple of {s.heads} heads")
    mlp_dim = s.dim * s.mlp_ratio
    if mlp_dim != int(mlp_dim):
        raise ConvertError(f"{source}: mlp_ratio {s.mlp_ratio} × dim {s.dim} is not an integer")
    preprocess = timm_eval(source, s.image_height, s.image_width, s.crop_pct, s.crop_mode,
                           s.interpolation, s.mean, s.std)
    return ModelSpec(source=source, image_height=s.image_height, image_width=s.image_width,
                     channels=s.channels, patch_size=s.patch_size, dim=s.dim, depth=s.depth,
                     heads=s.heads, head_dim=s.dim // s.heads, mlp_dim=int(mlp_dim),
                     norm_eps=1e-6, gelu="erf", preprocess=preprocess,
                     prefix_tokens=2 if s.distilled else 1, **extra)


def spec_from_arch(name):
    source = f"--arch {name}"
    return to_spec(lookup(name, source), source, preprocess_is_default=True)

