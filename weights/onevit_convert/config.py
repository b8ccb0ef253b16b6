"""--config FILE: a timm hub config.json → TimmDescription (completed by the checkpoint's
tensors: timm_description.py); a Hugging Face ViTConfig → ModelSpec; a model's
constructor arguments → ConstructorConfig (constructor_config.py).

timm: {"architecture": <timm name>, "pretrained_cfg": {...}, optional "model_args",
"num_classes", "num_features", "global_pool", "label_names"}; the name's words describe
the model (timm_description.py) and the other fields override them.
Hugging Face: a ViTConfig ({"model_type": "vit", "hidden_size", ...}), plus the
preprocessor_config.json beside it when there is one.
"""

import json
import math
import os
import re
from dataclasses import replace

from .errors import ConvertError
from .preprocess import hf_image_processor
from .constructor_config import is_constructor_config, constructor_config
from .spec import ModelSpec
from .timm_description import apply_model_args, describe_name

# HF ViTConfig defaults (transformers configuration_vit.py), used for absent keys.
_HF_DEFAULTS = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                "intermediate_size": 3072, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
                "image_size": 224, "patch_size": 16, "num_channels": 3, "qkv_bias": True}
# HF activation names → arch.gelu. ACT2FN "gelu" is nn.GELU() (erf); the others are the tanh form.
_HF_GELU = {"gelu": "erf", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}


def read_config(path):
    """A TimmDescription (timm), a ModelSpec (Hugging Face) or a ConstructorConfig (a model constructor's arguments, whose
    spec is built once the checkpoint's family is known: families.py)."""
    data = _read_json(path)
    if is_constructor_config(data):
        return constructor_config(path, data)
    if "architecture" in data:
        return _timm_config(path, data)
    if data.get("model_type") == "vit":
        return _hf_config(path, data)
    if "model_type" in data:
        raise ConvertError(f"{path}: model_type {data['model_type']!r} is not supported "
                           f"(only Hugging Face \"vit\")")
    raise ConvertError(f"{path}: neither a timm config (\"architecture\", \"pretrained_cfg\"), a "
                       f"Hugging Face ViTConfig (\"model_type\": \"vit\", \"hidden_size\", ...) nor "
                       f"a model constructor's arguments (\"dim\", \"heads\", ... or "
                       f"\"hidden_dim\", \"n_heads\", ...)")


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


def _hf_config(path, data):
    get = {k: data.get(k, v) for k, v in _HF_DEFAULTS.items()}
    dim = _int(path, "hidden_size", get["hidden_size"])
    heads = _int(path, "num_attention_heads", get["num_attention_heads"])
    if dim % heads:
        raise ConvertError(f"{path}: hidden_size {dim} is not a multiple of "
                           f"num_attention_heads {heads}")
    act = get["hidden_act"]
    if act not in _HF_GELU:
        raise ConvertError(f"{path}: hidden_act {act!r} is not supported "
                           f"(supported: {', '.join(_HF_GELU)})")
    eps = get["layer_norm_eps"]
    if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ConvertError(f"{path}: layer_norm_eps must be a positive number, got {eps!r}")
    height, width = _image_hw(path, "image_size", get["image_size"])
    channels = _int(path, "num_channels", get["num_channels"])

    num_classes, labels = None, None
    if data.get("id2label"):
        id2label = data["id2label"]
        try:
            labels = [str(id2label[str(i)]) for i in range(len(id2label))]
        except (KeyError, TypeError):
            raise ConvertError(f"{path}: id2label keys must be 0 .. {len(id2label) - 1}") from None
        num_classes = len(labels)
        # transformers fills id2label with LABEL_0, LABEL_1, ... when no names were given.
        if all(re.fullmatch(rf"LABEL_{i}", name) for i, name in enumerate(labels)):
            labels = None

    pre_path = os.path.join(os.path.dirname(os.path.abspath(path)), "preprocessor_config.json")
    if os.path.exists(pre_path):
        preprocess = hf_image_processor(pre_path, _read_json(pre_path), height, width, channels)
    else:
        preprocess = hf_image_processor(f"{path} (no preprocessor_config.json: ViTImageProcessor "
                                        f"defaults)", None, height, width, channels)
    return ModelSpec(source=path, image_height=height, image_width=width, channels=channels,
                     patch_size=_int(path, "patch_size", get["patch_size"]), dim=dim,
                     depth=_int(path, "num_hidden_layers", get["num_hidden_layers"]),
                     heads=heads, head_dim=dim // heads,
                     mlp_dim=_int(path, "intermediate_size", get["intermediate_size"]),
                     norm_eps=float(eps), gelu=_HF_GELU[act], preprocess=preprocess,
                     num_classes=num_classes, prefix_tokens=1, qkv_bias=bool(get["qkv_bias"]),
                     global_pool="token", labels=labels)
