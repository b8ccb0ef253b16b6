"""--config as a model constructor's keyword arguments, named as its code names them, in a
JSON object: the models whose weights cannot tell their heads, pooling or input size.

    vit-pytorch        {"image_size", "patch_size", "num_classes", "dim", "depth", "heads",
                        "mlp_dim", "pool": "cls", "channels": 3, "dim_head": 64}
    vit-pytorch-2023   the same with "mlp_dim_ratio" instead of "mlp_dim"
    mnist-vit          {"image_size", "patch_size", "num_classes", "dim", "depth", "heads",
                        "mlp_dim", "channels": 3}
    flax-seed          {"patch_size", "embed_dim", "hidden_dim", "n_heads", "num_layers",
                        "mlp_dim", "num_classes", "image_size", "channels"}

Training-only arguments (dropout rates) are accepted and ignored. Two extra keys, not
constructor arguments, may sit beside them: "preprocess" (see `constructor_preprocess`) and
"labels" (a list of class names). Which constructor the arguments are for is decided by
the checkpoint's tensor names (families.py), so the spec is built only once the family
is known (`spec_from_kwargs` of each such family's module).
"""

import math
from dataclasses import dataclass
from typing import Dict, List, Optional

from .errors import ConvertError
from .preprocess import INTERPOLATIONS, Preprocessing, direct

# Keys that only these constructors have (timm configs have "architecture", HF "model_type").
CONSTRUCTOR_MARKERS = ("dim", "heads", "mlp_dim", "mlp_dim_ratio", "dim_head", "embed_dim", "hidden_dim",
                "n_heads", "num_layers")
EXTRAS = ("preprocess", "labels")
# Arguments that only matter in training.
TRAINING_ONLY = ("dropout", "emb_dropout", "drop_p")


# family → (required arguments, {optional argument: default}), as their constructors have
# them. None defaults (flax-seed): read from the checkpoint, which is what the Flax modules do.
SIGNATURES = {
    "vit-pytorch": (("image_size", "patch_size", "num_classes", "dim", "depth", "heads", "mlp_dim"),
                    {"pool": "cls", "channels": 3, "dim_head": 64}),
    "vit-pytorch-2023": (("image_size", "patch_size", "num_classes", "dim", "depth", "heads",
                          "mlp_dim_ratio"),
                         {"pool": "cls", "channels": 3, "dim_head": 64}),
    "mnist-vit": (("image_size", "patch_size", "num_classes", "dim", "depth", "heads", "mlp_dim"),
                  {"channels": 3}),
    "flax-seed": (("patch_size", "embed_dim", "hidden_dim", "n_heads", "num_layers", "mlp_dim",
                   "num_classes"),
                  {"image_size": None, "channels": None}),
}


@dataclass
class ConstructorConfig:
    path: str
    kwargs: Dict[str, object]           # the constructor's keyword arguments, as given
    preprocess: Optional[dict] = None   # the "preprocess" object, if any
    labels: Optional[List[str]] = None


def is_constructor_config(data):
    return "architecture" not in data and "model_type" not in data and \
        any(key in data for key in CONSTRUCTOR_MARKERS)


def constructor_config(path, data):
    kwargs = {k: v for k, v in data.items() if k not in EXTRAS}
    labels = data.get("labels")
    if labels is not None and (not isinstance(labels, list) or
                               not all(isinstance(v, str) for v in labels)):
        raise ConvertError(f"{path}: labels must be a list of strings")
    preprocess = data.get("preprocess")
    if preprocess is not None and not isinstance(preprocess, dict):
        raise ConvertError(f"{path}: preprocess must be an object")
    return ConstructorConfig(path, kwargs, preprocess, labels)


def take_kwargs(config, family):
    """The constructor's arguments: the required ones present, defaults filled in, nothing
    unknown; an argument of another family's constructor is named as such."""
    required, defaults = SIGNATURES[family]
    others = {}
    for other, (req, opt) in SIGNATURES.items():
        for key in list(req) + list(opt):
            if other != family:
                others.setdefault(key, []).append(other)
    known = set(required) | set(defaults) | set(TRAINING_ONLY)
    signature = ", ".join(list(required) + [k if v is None else f"{k}={v!r}"
                                            for k, v in defaults.items()])
    unknown = [k for k in config.kwargs if k not in known]
    if unknown:
        hints = sorted({f for k in unknown for f in others.get(k, [])})
        hint = (f" ({', '.join(unknown)}: an argument of the {' / '.join(hints)} constructor)"
                if hints else "")
        verb = "is not an argument" if len(unknown) == 1 else "are not arguments"
        raise ConvertError(f"{config.path}: {', '.join(unknown)} {verb} of the {family} "
                           f"model's constructor ({signature}), and the checkpoint's tensor names "
                           f"are those of a {family} model{hint}")
    missing = [k for k in required if k not in config.kwargs]
    if missing:
        raise ConvertError(f"{config.path}: the {family} model's constructor needs "
                           f"{', '.join(missing)} (its arguments: {signature})")
    out = dict(defaults)
    out.update({k: v for k, v in config.kwargs.items() if k not in TRAINING_ONLY})
    return out


def pos_int(path, key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConvertError(f"{path}: {key} must be a positive integer, got {value!r}")
    return value


def int_pair(path, key, value):
    """vit-pytorch's pair(): an int, or a [height, width] pair (a JSON list)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ConvertError(f"{path}: {key} must be an integer or [height, width], got {value!r}")
        return pos_int(path, key, value[0]), pos_int(path, key, value[1])
    return pos_int(path, key, value), pos_int(path, key, value)


def square_patch(path, value):
    ph, pw = int_pair(path, "patch_size", value)
    if ph != pw:
        raise ConvertError(f"{path}: patch_size {ph}x{pw} is not square; .ovit models have "
                           f"square patches")
    return ph


def choice(path, key, value, allowed):
    if value not in allowed:
        raise ConvertError(f"{path}: {key} must be one of {', '.join(map(repr, allowed))}, "
                           f"got {value!r}")
    return value


def constructor_preprocess(config, height, width, channels):
    """The recipe: by default a direct bilinear resize to the model size with mean = std = 0.5
    per channel (these models have no official recipe); a "preprocess" object overrides it:

        {"resize": "direct" | "shorter_then_crop", "resize_size": N (shorter_then_crop only),
         "interpolation": "bilinear" | "bicubic" | "nearest", "mean": [...], "std": [...]}
    """
    path = config.path
    p = dict(config.preprocess or {})
    unknown = sorted(set(p) - {"resize", "resize_size", "interpolation", "mean", "std"})
    if unknown:
        raise ConvertError(f"{path}: preprocess.{unknown[0]} is not understood (known: resize, "
                           f"resize_size, interpolation, mean, std)")
    resize = choice(path, "preprocess.resize", p.get("resize", "direct"),
                    ("direct", "shorter_then_crop"))
    interpolation = choice(path, "preprocess.interpolation", p.get("interpolation", "bilinear"),
                           INTERPOLATIONS)
    stats = {}
    for key in ("mean", "std"):
        value = p.get(key, [0.5] * channels)
        if not isinstance(value, list) or len(value) != channels or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in value):
            raise ConvertError(f"{path}: preprocess.{key} must be a list of {channels} numbers "
                               f"(one per channel), got {value!r}")
        stats[key] = tuple(float(v) for v in value)
    if not all(s > 0 for s in stats["std"]):
        raise ConvertError(f"{path}: preprocess.std {list(stats['std'])} must be positive")
    if resize == "direct":
        if "resize_size" in p:
            raise ConvertError(f"{path}: preprocess.resize_size is only used with "
                               f"resize \"shorter_then_crop\"")
        return direct(height, interpolation, stats["mean"], stats["std"])
    if "resize_size" not in p:
        raise ConvertError(f"{path}: preprocess.resize \"shorter_then_crop\" needs resize_size")
    size = pos_int(path, "preprocess.resize_size", p["resize_size"])
    return Preprocessing("shorter_then_crop", size, interpolation, stats["mean"], stats["std"])
