"""--config FILE: a timm hub config.json → TimmDescription (completed by the checkpoint's
tensors: timm_description.py); a Hugging Face transformers config.json → TransformersConfig
(transformers_config.py); an open_clip_config.json → OpenClipArch (openclip_vit.py); a model's
constructor arguments → ConstructorConfig (constructor_config.py).

timm: {"architecture": <timm name>, "pretrained_cfg": {...}, optional "model_args",
"num_classes", "num_features", "global_pool", "label_names"}; the name's words describe
the model (timm_description.py) and the other fields override them.
Hugging Face: a config.json of a vision model ({"model_type": "vit" | "deit" | "dinov2" | "clip" |
"siglip" | ..., "hidden_size", ...}), plus the preprocessor_config.json beside it when there is one.
"""

import json
from dataclasses import replace

from . import openclip_vit, transformers_config
from .constructor_config import is_constructor_config, constructor_config
from .errors import ConvertError
from .timm_description import apply_model_args, describe_name


def read_config(path):
    """A TimmDescription (timm), a TransformersConfig (Hugging Face), an OpenClipArch (open_clip) or a
    ConstructorConfig (a model constructor's arguments), whose spec is built once the checkpoint's
    family is known (families.py)."""
    data = _read_json(path)
    if is_constructor_config(data):
        return constructor_config(path, data)
    if "architecture" in data:
        return _timm_config(path, data)
    if transformers_config.is_transformers(data):
        return transformers_config.read(path, data, _read_json)
    if openclip_vit.is_config(data):
        return openclip_vit.from_config(path, data)
    if "model_type" in data:
        raise ConvertError(f"{path}: model_type {data['model_type']!r} is not supported (Hugging Face "
                           f"{', '.join(transformers_config.TYPES)})")
    raise ConvertError(f"{path}: neither a timm config (\"architecture\", \"pretrained_cfg\"), a "
                       f"Hugging Face config (\"model_type\": \"vit\", \"hidden_size\", ...), an "
                       f"open_clip_config.json (\"model_cfg\") nor a model constructor's arguments "
                       f"(\"dim\", \"heads\", ... or \"hidden_dim\", \"n_heads\", ...)")


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ConvertError(f"{path}: cannot read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConvertError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConvertError(f"{path}: expected a JSON object")
    return data


def _int(path, key, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConvertError(f"{path}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def _floats(path, key, value):
    if not isinstance(value, (list, tuple)) or not value or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ConvertError(f"{path}: {key} must be a list of numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _image_hw(path, key, value):
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return _int(path, key, value[0]), _int(path, key, value[1])
    return _int(path, key, value), _int(path, key, value)


def _labels(path, key, value):
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConvertError(f"{path}: {key} must be a list of strings")
    return value


def _timm_config(path, data):
    d = describe_name(str(data["architecture"]), path)
    model_args = data.get("model_args") or {}
    if not isinstance(model_args, dict):
        raise ConvertError(f"{path}: model_args must be an object")
    apply_model_args(d, path, model_args, _int, _image_hw)

    cfg = data.get("pretrained_cfg") or {}
    if not isinstance(cfg, dict):
        raise ConvertError(f"{path}: pretrained_cfg must be an object")
    if cfg.get("input_size") is not None:
        size = cfg["input_size"]
        if not (isinstance(size, list) and len(size) == 3):
            raise ConvertError(f"{path}: pretrained_cfg.input_size must be [C, H, W], got {size!r}")
        c, h, w = (_int(path, "pretrained_cfg.input_size", v) for v in size)
        d.state("channels", c, "pretrained_cfg.input_size")
        # model_args.img_size is what the model was built for; timm's export keeps the source's
        # recommended input_size beside it for a model that takes any size (dynamic_img_size).
        if d.said_by.get("image") != "model_args.img_size":
            d.state("image", (h, w), "pretrained_cfg.input_size")
    pre = d.preprocess
    for key in ("interpolation", "crop_mode"):
        if cfg.get(key) is not None:
            pre = replace(pre, **{key: str(cfg[key])})
    if cfg.get("crop_pct") is not None:
        pre = replace(pre, crop_pct=cfg["crop_pct"])
    for key in ("mean", "std"):
        if cfg.get(key) is not None:
            pre = replace(pre, **{key: _floats(path, f"pretrained_cfg.{key}", cfg[key])})
    d.preprocess, d.preprocess_given = pre, bool(cfg)

    if data.get("num_features") is not None:
        d.state("dim", _int(path, "num_features", data["num_features"]), "num_features")
    # Top-level fields describe the saved model itself; pretrained_cfg may predate a fine-tune.
    num_classes = data.get("num_classes", cfg.get("num_classes"))
    if num_classes is not None:
        d.num_classes = _int(path, "num_classes", num_classes, minimum=0)
    labels = data.get("label_names", cfg.get("label_names"))
    if labels is not None:
        d.labels = _labels(path, "label_names", labels)
    if data.get("global_pool") is not None:
        d.state("global_pool", str(data["global_pool"]), "global_pool")
    return d
