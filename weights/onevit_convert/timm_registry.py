"""timm's own registration of its ViT names, from a committed snapshot (timm_registry.json).

The converter cannot import timm, yet a timm model's defaults must be those of the class its
name is registered with (vision_transformer.py's VisionTransformer, deit.py, eva.py's Eva,
vision_transformer_relpos.py's VisionTransformerRelPos),
never guesses from its name. tests/fixtures/make_timm_registry.py writes the snapshot with
timm itself: per name its class, registered model_args and default pretrained_cfg; per class
its constructor's defaults. Layer arguments there are resolved ({"norm": "rmsnorm", "eps": 1e-6},
{"act": "gelu_tanh"}, {"class": "SwiGLU"}); a hub config's model_args give them as timm's
strings ("rmsnorm", "gelu_tanh"), read here with timm's defaults for those layers.
"""

import os
from dataclasses import dataclass
from typing import Dict, Optional

from . import snapshot
from .errors import ConvertError

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "timm_registry.json")

# timm layer names a hub config may give (get_norm_layer / get_act_layer), with the defaults
# of the classes they select: timm's LayerNorm and RmsNorm both default to eps 1e-6.
_NORM_NAMES = {"layernorm": {"norm": "layernorm", "eps": 1e-6, "bias": True},
               "rmsnorm": {"norm": "rmsnorm", "eps": 1e-6, "bias": False}}
_ACT_NAMES = {"gelu": "gelu", "gelu_tanh": "gelu_tanh", "quick_gelu": "quick_gelu", "silu": "silu",
              "swish": "silu"}


@dataclass(frozen=True)
class Registration:
    name: str
    module: str                  # vision_transformer | deit | eva
    cls: str                     # VisionTransformer | VisionTransformerDistilled | Eva
    defaults: Dict[str, object]  # the class constructor's defaults
    model_args: Dict[str, object]
    pretrained_cfg: Dict[str, object]
    timm_version: str

    def arguments(self, overrides=None):
        """The constructor's arguments: class defaults, then the registration, then `overrides`."""
        args = dict(self.defaults)
        args.update(self.model_args)
        args.update(overrides or {})
        return args


def _snapshot():
    return snapshot.load(_PATH)


def lookup(name) -> Optional[Registration]:
    """The registration of a timm name (pretrained tag removed), or None if timm's snapshot lacks it."""
    snap = _snapshot()
    entry = snap["models"].get(name)
    if entry is None:
        return None
    return Registration(name=name, module=entry["module"], cls=entry["class"],
                        defaults=snap["classes"][entry["class"]]["defaults"], model_args=entry["model_args"],
                        pretrained_cfg=entry["pretrained_cfg"], timm_version=snap["timm_version"])


def hub_argument(reg, path, key, value):
    """A hub config's model_args[key] in the snapshot's form; a ConvertError for a key the class
    does not take or a layer argument that is not one of timm's names for it."""
    if key not in reg.defaults:
        raise ConvertError(f"{path}: model_args.{key} is not an argument of timm's {reg.cls} "
                           f"({reg.module}.py), which {reg.name} is registered with")
    if key.endswith("norm_layer") and isinstance(value, str):
        kind = value.replace("_", "").lower()
        if kind not in _NORM_NAMES:
            raise ConvertError(f"{path}: model_args.{key}={value!r}: only timm's {', '.join(_NORM_NAMES)} "
                               f"norm layers are understood")
        return dict(_NORM_NAMES[kind])
    if key.endswith("act_layer") and isinstance(value, str):
        if value not in _ACT_NAMES:
            raise ConvertError(f"{path}: model_args.{key}={value!r}: only timm's {', '.join(_ACT_NAMES)} "
                               f"activations are understood")
        return {"act": _ACT_NAMES[value]}
    if isinstance(value, str) and isinstance(reg.defaults[key], dict) and value != "":
        # A layer class given by name: {"class": "SwiGLU"}.
        return {"class": value}
    return value
