"""Preprocessing recipes (the `preprocess.*` keys of FORMAT.md) and how each ecosystem's
eval transform translates into one. A transform the format cannot express is an error,
never an approximation: a wrong recipe silently costs accuracy.
"""

import math
from dataclasses import dataclass
from typing import Tuple

from .errors import ConvertError

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
# PIL.Image resampling codes, as HF preprocessor_config.json stores them.
_PIL_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}
_PIL_RESAMPLE_OTHERS = {1: "lanczos", 4: "box", 5: "hamming"}


@dataclass(frozen=True)
class Preprocessing:
    resize: str                 # "shorter_then_crop" | "direct" | "squash_then_crop"
    resize_size: int            # shorter-side target; for "direct", the image height (unused)
    interpolation: str          # one of INTERPOLATIONS
    mean: Tuple[float, ...]     # per channel, on pixels scaled to [0, 1]
    std: Tuple[float, ...]


def direct(height, interpolation, mean, std):
    return Preprocessing("direct", height, interpolation, tuple(mean), tuple(std))


def google_default(height, channels):
    """vit_jax/input_pipeline.py: tf.image.resize (bilinear) to the model size, (x - 127.5) / 127.5."""
    return direct(height, "bilinear", (0.5,) * channels, (0.5,) * channels)


def timm_eval(source, height, width, crop_pct, crop_mode, interpolation, mean, std):
    """timm.data.transforms_factory.transforms_imagenet_eval, for the cases .ovit can express."""
    if interpolation not in INTERPOLATIONS:
        raise ConvertError(f"{source}: interpolation {interpolation!r} is not supported "
                           f"(supported: {', '.join(INTERPOLATIONS)})")
    if not (isinstance(crop_pct, (int, float)) and 0 < crop_pct <= 1):
        raise ConvertError(f"{source}: crop_pct {crop_pct!r} must be a number in (0, 1]")
    # timm computes the scale size exactly like this (floor of a float division).
    scale = (math.floor(height / crop_pct), math.floor(width / crop_pct))
    if crop_mode in (None, "center") and scale[0] == scale[1]:
        # transforms.Resize(int): shorter side → scale, keep aspect; then CenterCrop.
        return Preprocessing("shorter_then_crop", scale[0], interpolation, tuple(mean), tuple(std))
    if crop_mode in (None, "center", "squash") and scale == (height, width):
        # Resize((h, w)) straight to the model size; the centre crop then cuts nothing.
        return direct(height, interpolation, mean, std)
    if crop_mode == "squash" and scale[0] == scale[1]:
        # Resize((s, s)), aspect ratio not kept, then CenterCrop.
        return Preprocessing("squash_then_crop", scale[0], interpolation, tuple(mean), tuple(std))
    raise ConvertError(f"{source}: timm eval transform crop_mode={crop_mode!r}, crop_pct={crop_pct} "
                       f"for input {height}x{width} (resize to {scale[0]}x{scale[1]} then crop) "
                       f"cannot be expressed as a .ovit recipe")


def hf_image_processor(source, config, height, width, channels):
    """transformers ViTImageProcessor (preprocessor_config.json); `config` None = no such file."""
    if config is None:
        # ViTImageProcessor's defaults, with the size taken as the model's own input size.
        return direct(height, "bilinear", (0.5,) * channels, (0.5,) * channels)
    if not config.get("do_resize", True):
        raise ConvertError(f"{source}: do_resize is false; a .ovit recipe always resizes")
    if not config.get("do_rescale", True) or \
            abs(config.get("rescale_factor", 1 / 255) - 1 / 255) > 1e-12:
        raise ConvertError(f"{source}: only rescaling by 1/255 is supported "
                           f"(do_rescale={config.get('do_rescale', True)}, "
                           f"rescale_factor={config.get('rescale_factor', 1 / 255)})")
    resample = config.get("resample", 2)
    if resample not in _PIL_RESAMPLE:
        what = _PIL_RESAMPLE_OTHERS.get(resample, "unknown")
        raise ConvertError(f"{source}: resample={resample!r} ({what}) is not supported "
                           f"(0 nearest, 2 bilinear, 3 bicubic)")
    interpolation = _PIL_RESAMPLE[resample]
    if config.get("do_normalize", True):
        mean = config.get("image_mean", [0.5, 0.5, 0.5])
        std = config.get("image_std", [0.5, 0.5, 0.5])
    else:
        mean, std = [0.0] * channels, [1.0] * channels  # pixels in [0, 1] as they are
    crop = config.get("crop_size") if config.get("do_center_crop", False) else None
    crop = _hw(source, "crop_size", crop) if crop is not None else None

    size = config.get("size", {"height": 224, "width": 224})
    if isinstance(size, dict) and size.get("longest_edge") is not None:
        raise ConvertError(f"{source}: size.longest_edge (a resize bounded by the longer side) cannot be "
                           f"expressed as a .ovit recipe")
    if isinstance(size, dict) and "shortest_edge" in size:
        if crop != (height, width):
            raise ConvertError(f"{source}: size.shortest_edge needs do_center_crop with crop_size "
                               f"{height}x{width} (the model input); got crop_size {crop}")
        return Preprocessing("shorter_then_crop", int(size["shortest_edge"]), interpolation,
                             tuple(mean), tuple(std))
    size = _hw(source, "size", size)
    if size != (height, width) and crop == (height, width) and size[0] == size[1] and size[0] >= max(crop):
        # Resize to S x S (the aspect ratio not kept), then the centre crop: DeiTImageProcessor.
        return Preprocessing("squash_then_crop", size[0], interpolation, tuple(mean), tuple(std))
    if size != (height, width):
        raise ConvertError(f"{source}: resizes to {size[0]}x{size[1]} but the model input is "
                           f"{height}x{width}")
    if crop is not None and crop != size:
        raise ConvertError(f"{source}: resize to {size[0]}x{size[1]} then centre crop "
                           f"{crop[0]}x{crop[1]} cannot be expressed as a .ovit recipe")
    return direct(height, interpolation, mean, std)


def _hw(source, key, value):
    """An HF size: an int (square) or {"height": h, "width": w}."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, dict) and "height" in value and "width" in value:
        return int(value["height"]), int(value["width"])
    raise ConvertError(f"{source}: {key} {value!r} is neither an int nor {{height, width}}")
