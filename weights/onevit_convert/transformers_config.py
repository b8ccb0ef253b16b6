"""A Hugging Face transformers config.json (and the preprocessor_config.json beside it) → the
ModelSpec of its vision tower, completed by the checkpoint's tensors (transformers_vit.py).

Model types: vit, deit, dinov2, dinov2_with_registers, dinov3_vit, clip_vision_model and clip
(its vision_config), siglip_vision_model and siglip (its vision_config). Absent keys take the
defaults of the transformers config class of that type. The layers a version 2 model file
expresses as features (DINOv3's RoPE without a position table, SwiGLU MLPs) are decided from the
config, and refused by the feature's name where the engine cannot run them.

The input size is the image processor's (its crop, else its resize); DINOv2 interpolates its
position embedding to it on every forward (bicubic, PyTorch's interpolate without antialias),
so its file is written for that size with the embedding resampled the same way; the other
models run at their config's image_size, which the processor must match, but DINOv3, whose RoPE
is computed for the grid of every input (as here, for the file's).
"""

import math
import os
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from . import transformers_dinov3
from .errors import ConvertError
from .features import check_runnable
from .posembed import resample_grid
from .preprocess import hf_image_processor
from .spec import ModelSpec

_COMMON = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "num_channels": 3,
           "image_size": 224}
# model_type → (defaults of its config class, the vision tower's key in a full model's config).
_TYPES = {
    "vit": dict(_COMMON, intermediate_size=3072, hidden_act="gelu", layer_norm_eps=1e-12, patch_size=16,
                qkv_bias=True),
    "deit": dict(_COMMON, intermediate_size=3072, hidden_act="gelu", layer_norm_eps=1e-12, patch_size=16,
                 qkv_bias=True),
    "dinov2": dict(_COMMON, mlp_ratio=4, hidden_act="gelu", layer_norm_eps=1e-6, patch_size=14, qkv_bias=True,
                   use_swiglu_ffn=False),
    "dinov2_with_registers": dict(_COMMON, mlp_ratio=4, hidden_act="gelu", layer_norm_eps=1e-6, patch_size=16,
                                  qkv_bias=True, use_swiglu_ffn=False, num_register_tokens=4),
    "dinov3_vit": dict(_COMMON, hidden_size=384, num_attention_heads=6, intermediate_size=1536, hidden_act="gelu",
                       layer_norm_eps=1e-5, patch_size=16, num_register_tokens=0, rope_theta=100.0,
                       use_gated_mlp=False),
    "clip_vision_model": dict(_COMMON, intermediate_size=3072, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                              patch_size=32),
    "siglip_vision_model": dict(_COMMON, intermediate_size=3072, hidden_act="gelu_pytorch_tanh",
                                layer_norm_eps=1e-6, patch_size=16, vision_use_head=True),
}
_FULL = {"clip": "clip_vision_model", "siglip": "siglip_vision_model"}
TYPES = tuple(_TYPES) + tuple(_FULL)
# transformers ACT2FN names → arch.gelu: "gelu" is nn.GELU() (erf); "gelu_new", "gelu_pytorch_tanh"
# and "gelu_fast" the tanh form; "quick_gelu" x·sigmoid(1.702x).
GELU = {"gelu": "erf", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh", "quick_gelu": "quick"}


@dataclass
class TransformersConfig:
    source: str                     # how messages name it: the config's path
    model_type: str                 # of the vision tower
    architectures: List[str]
    dim: int
    depth: int
    heads: int
    mlp_dim: int
    norm_eps: float
    gelu: str
    image: Tuple[int, int]          # the config's image_size: what the position embedding is for
    patch: int
    channels: int
    registers: int
    preprocess_source: str
    preprocessor: Optional[dict]
    labels: Optional[List[str]]
    num_classes: Optional[int]
    features: List[str]             # model-file features (features.py), from the config
    rope_theta: Optional[float]     # DINOv3's RoPE base period

    def spec(self, mapped):
        return _spec(self, mapped)


def is_transformers(data):
    return data.get("model_type") in TYPES


def read(path, data, read_json):
    """The TransformersConfig of config.json `data`; its preprocessor_config.json is read beside it."""
    model_type = data["model_type"]
    architectures = [str(a) for a in data.get("architectures") or []]
    labels, num_classes = _labels(path, data)
    if model_type in _FULL:
        vision = data.get("vision_config") or {}
        if not isinstance(vision, dict):
            raise ConvertError(f"{path}: vision_config must be an object")
        data, model_type = vision, _FULL[model_type]
    get = dict(_TYPES[model_type])
    get.update({k: v for k, v in data.items() if k in get or k == "intermediate_size"})
    dim, depth, heads = (_int(path, k, get[k]) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads"))
    if dim % heads:
        raise ConvertError(f"{path}: hidden_size {dim} is not a multiple of num_attention_heads {heads}")
    if model_type == "siglip_vision_model" and not get.get("vision_use_head", True):
        raise ConvertError(f"{path}: vision_use_head is false: a SigLIP tower without its attention-pooling head "
                           f"has no pooled output onevit reproduces")
    mlp = _int(path, "intermediate_size", get["intermediate_size"]) if "intermediate_size" in get else \
        int(dim * _number(path, "mlp_ratio", get["mlp_ratio"]))
    features = ["no_pos_embed", "rope"] if model_type == "dinov3_vit" else []
    act = get["hidden_act"]
    if get.get("use_swiglu_ffn"):
        # Dinov2SwiGLUFFN: two thirds of the MLP width, rounded up to a multiple of 8; SiLU whatever hidden_act says.
        features.append("swiglu")
        mlp, act = (int(mlp * 2 / 3) + 7) // 8 * 8, "silu"
    elif get.get("use_gated_mlp"):
        features.append("swiglu")
        if act != "silu":
            raise ConvertError(f"{path}: use_gated_mlp with hidden_act {act!r}: only SiLU's gate (SwiGLU) is "
                               f"supported")
    elif act not in GELU:
        raise ConvertError(f"{path}: hidden_act {act!r} is not supported ({', '.join(GELU)})")
    check_runnable(features, [], f"{path} ({model_type})")
    eps = _number(path, "layer_norm_eps", get["layer_norm_eps"])
    image = _hw(path, "image_size", get["image_size"])
    pre_path = os.path.join(os.path.dirname(os.path.abspath(path)), "preprocessor_config.json")
    preprocessor = read_json(pre_path) if os.path.exists(pre_path) else None
    return TransformersConfig(
        source=path, model_type=model_type, architectures=architectures, dim=dim, depth=depth, heads=heads,
        mlp_dim=mlp, norm_eps=eps, gelu=GELU.get(act, "erf"), image=image, patch=_int(path, "patch_size", get["patch_size"]),
        channels=_int(path, "num_channels", get["num_channels"]), registers=int(get.get("num_register_tokens", 0)),
        preprocess_source=pre_path if preprocessor is not None else
        f"{path} (no preprocessor_config.json: the image processor's defaults)",
        preprocessor=preprocessor, labels=labels, num_classes=num_classes, features=features,
        rope_theta=_number(path, "rope_theta", get["rope_theta"]) if "rope_theta" in get else None)


def _int(path, key, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConvertError(f"{path}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def _number(path, key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConvertError(f"{path}: {key} must be a positive number, got {value!r}")
    return float(value)


def _hw(path, key, value):
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return _int(path, key, value[0]), _int(path, key, value[1])
    return _int(path, key, value), _int(path, key, value)


def _labels(path, data):
    id2label = data.get("id2label")
    if not id2label:
        return None, None
    try:
        labels = [str(id2label[str(i)]) for i in range(len(id2label))]
    except (KeyError, TypeError):
        raise ConvertError(f"{path}: id2label keys must be 0 .. {len(id2label) - 1}") from None
    # transformers fills id2label with LABEL_0, LABEL_1, ... when no names were given.
    if all(re.fullmatch(rf"LABEL_{i}", name) for i, name in enumerate(labels)):
        return None, len(labels)
    return labels, len(labels)


def _spec(c, mapped):
    """Sizes the config states are checked against the tensors by assemble, naming both values."""
    t = mapped.tensors
    if sorted(mapped.features) != sorted(c.features):
        raise ConvertError(f"{c.source} describes a {c.model_type} model with " + _feature_words(c.features) +
                           ", but the checkpoint's tensors are one with " + _feature_words(mapped.features))
    if "rope" in c.features:
        mapped.rope = transformers_dinov3.rope(c.rope_theta)
    # The input size the image processor feeds (its crop, else its resize), and its recipe.
    size = _processor_size(c)
    preprocess = hf_image_processor(c.preprocess_source, c.preprocessor, size[0], size[1], c.channels)
    if size != c.image and "rope" not in c.features:
        if not c.model_type.startswith("dinov2"):
            raise ConvertError(f"{c.preprocess_source} feeds {size[0]}x{size[1]} images, but {c.source}'s model "
                               f"is for {c.image[0]}x{c.image[1]} (image_size), and {c.model_type} does not "
                               f"interpolate its position embedding by default")
        _interpolate_pos_embed(c, mapped, size)
    # id2label is in every config (LABEL_0, LABEL_1 by default): it counts only with a classifier.
    classifier = "head.weight" in t
    prefix = int(t["prefix_tokens"].shape[0]) if "prefix_tokens" in t else 0
    if c.registers and prefix != 1 + c.registers:
        raise ConvertError(f"{c.source} says num_register_tokens={c.registers}, but the checkpoint has "
                           f"{max(prefix - 1, 0)} register tokens")
    return ModelSpec(source=c.source, image_height=size[0], image_width=size[1], channels=c.channels,
                     patch_size=c.patch, dim=c.dim, depth=c.depth, heads=c.heads, head_dim=c.dim // c.heads,
                     mlp_dim=c.mlp_dim, norm_eps=c.norm_eps, gelu=c.gelu, preprocess=preprocess,
                     num_classes=c.num_classes if classifier else None, labels=c.labels if classifier else None)


def _feature_words(features):
    return "features " + ", ".join(features) if features else "no version 2 features"


def _interpolate_pos_embed(c, mapped, size):
    """What Dinov2Embeddings.interpolate_pos_encoding does on every forward for another input size:
    the patch rows as a square grid, F.interpolate(size=(h/P, w/P), mode='bicubic',
    align_corners=False), the class (and zero register) rows kept."""
    pos = mapped.tensors["pos_embed"]
    prefix = 1 + c.registers
    grid = pos.shape[0] - prefix
    side = math.isqrt(grid)
    if side * side != grid or side * c.patch != c.image[0] or c.image[0] != c.image[1]:
        raise ConvertError(f"{c.source}: position_embeddings has {grid} patch rows, not the square grid of "
                           f"image_size {c.image[0]}x{c.image[1]} in patches of {c.patch}")
    new = resample_grid(pos[prefix:].reshape(side, side, -1), (size[0] // c.patch, size[1] // c.patch), "bicubic")
    mapped.tensors["pos_embed"] = np.ascontiguousarray(
        np.concatenate([pos[:prefix], new.reshape(-1, pos.shape[1]).astype(np.float32)], axis=0))
    mapped.notes.append(f"position embedding interpolated from a {side}x{side} to a {size[0] // c.patch}x"
                        f"{size[1] // c.patch} patch grid for the image processor's {size[0]}x{size[1]} input, "
                        f"as {c.model_type} does on every forward (bicubic)")


def _processor_size(c):
    """The image processor's output size: its centre crop, else its resize (height, width)."""
    p = c.preprocessor
    if p is None:
        return c.image
    for key in ("crop_size", "size"):
        value = p.get(key)
        if key == "crop_size" and not p.get("do_center_crop"):
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            return value, value
        if isinstance(value, dict) and "height" in value and "width" in value:
            return _int(c.preprocess_source, key, value["height"]), _int(c.preprocess_source, key, value["width"])
    return c.image
