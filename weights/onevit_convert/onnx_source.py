"""An .onnx file → (MappedCheckpoint, ModelSpec), and the check of the converted model against the
graph's own values, stage by stage.

The graph gives the architecture (onnx_vit.py). It carries no preprocessing and no labels: they
come from a config beside it or given with --config (a transformers preprocessor_config.json /
config.json, a timm config.json or --arch with a timm name) and --labels, else ImageNet's
defaults, said in a note.
"""

import json
import os
from dataclasses import replace

import numpy as np

from . import canonical_forward, onnx_vit
from .errors import ConvertError
from .preprocess import Preprocessing, hf_image_processor, timm_eval
from .spec import ModelSpec
from .timm_description import TimmDescription
from .transformers_config import TransformersConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The parity the converted model must have with the graph on the check image, at every stage.
TOLERANCE = 1e-4
# The tokens a block's check runs as queries: spread over the sequence, class token and last included.
CHECK_ROWS = 16


def is_onnx(path):
    return path.lower().endswith(".onnx")


def read(path, config, labels=None):
    """(MappedCheckpoint, ModelSpec, check): check(model) compares the converted model with the graph.
    `labels` (--labels) count the classifier's outputs where the graph cannot tell a classifier."""
    if config is not None and not isinstance(config, (TransformersConfig, TimmDescription)):
        raise ConvertError(f"{config.source}: an ONNX graph's preprocessing comes from a transformers or timm "
                           f"config (or ImageNet's defaults), not from this")
    if isinstance(config, TimmDescription) and (config.heads is not None or config.gelu is not None) and \
            config.name is None:
        raise ConvertError("--heads, --gelu, --norm-eps, --global-pool: an ONNX graph states its architecture itself")
    stated = labels or (config.labels if config is not None else None)
    mapped, facts = onnx_vit.read(path, classes=len(stated) if stated else None)
    t = mapped.tensors
    dim = int(t["patch_embed.weight"].shape[0])
    inner = int(t["blocks.0.attn.qkv.weight"].shape[0]) // 3
    heads = facts["heads"]
    height, width = facts["image"]
    preprocess, labels, note = _preprocessing(path, config, height, width, facts["channels"])
    if note:
        mapped.notes.append(note)
    spec = ModelSpec(source=path, image_height=height, image_width=width, channels=facts["channels"],
                     patch_size=int(t["patch_embed.weight"].shape[2]), dim=dim, depth=mapped.depth, heads=heads,
                     head_dim=inner // heads, mlp_dim=int(t["blocks.0.mlp.fc1.weight"].shape[0]),
                     norm_eps=facts["eps"], gelu=facts["gelu"], preprocess=preprocess,
                     attn_scale=facts["attn_scale"], labels=labels if "head.weight" in t else None)
    return mapped, spec, lambda model: check(path, model, facts)


def _preprocessing(path, config, height, width, channels):
    """(Preprocessing, labels, note)."""
    if isinstance(config, TransformersConfig):
        pre = hf_image_processor(config.preprocess_source, config.preprocessor, height, width, channels)
        return pre, config.labels, None
    if isinstance(config, TimmDescription):
        p = config.preprocess
        pre = timm_eval(config.source, height, width, p.crop_pct, p.crop_mode, p.interpolation, p.mean, p.std)
        return pre, config.labels, None
    beside = os.path.join(os.path.dirname(os.path.abspath(path)), "preprocessor_config.json")
    if os.path.isfile(beside):
        try:
            with open(beside, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise ConvertError(f"{beside}: not readable JSON ({e})") from None
        return hf_image_processor(beside, data, height, width, channels), None, None
    size = int(height / 0.875)
    pre = Preprocessing("shorter_then_crop", size, "bilinear", IMAGENET_MEAN[:channels] if channels == 3 else
                        (0.5,) * channels, IMAGENET_STD if channels == 3 else (0.5,) * channels)
    note = (f"the ONNX graph carries no preprocessing: ImageNet's defaults (shorter side to {size}, centre crop "
            f"{height}x{width}, bilinear, mean {list(pre.mean)}, std {list(pre.std)}); give --config with the "
            f"model's preprocessor_config.json or timm config.json, or --arch with its timm name, to use its own")
    return pre, None, note


def check(path, model, facts):
    """The converted model against the graph on the check image, stage by stage: the embedding,
    each block and the tail, each run on the graph's own input to it. The stages chain from the
    image to the graph's outputs, so together they prove what one forward pass would, at a fraction
    of its cost: a block's queries and MLP run on CHECK_ROWS of its tokens only (a block computes
    the same for every token; all of them are its keys and values)."""
    g, arch, t = facts["graph"], model.arch, dict(model.tensors)
    stream = facts["stream"]
    ours = canonical_forward.embed(arch, t, facts["input"])
    x = _stream_value(path, g, stream[0], ours.shape)
    _compare(path, f"the tokens entering block 0 ({stream[0]})", ours, x)
    rows = np.unique(np.linspace(0, x.shape[1] - 1, CHECK_ROWS).round().astype(np.int64))
    for i in range(arch.depth):
        nxt = _stream_value(path, g, stream[i + 1], x.shape)
        _compare(path, f"block {i}'s output ({stream[i + 1]})", canonical_forward.block(arch, t, i, x, rows),
                 nxt[:, rows])
        x = nxt
    ours = canonical_forward.tail(arch, t, x)
    for name, kind in facts["outputs"].items():
        want = np.asarray(g.values[name])
        got = ours[kind]
        if got is None or got.size != want.size:
            raise ConvertError(f"{path}: the graph's output {name} ({kind}, shape {list(want.shape)}) is not what the "
                               f"matched ViT gives")
        _compare(path, f"its output {name} ({kind})", got.reshape(want.shape), want)


def _stream_value(path, g, name, shape):
    value = g.values[name]
    # Not an array: the evaluation let it go (onnx_graph.Dropped), having judged it not of the stream.
    if not isinstance(value, np.ndarray) or value.shape != tuple(shape):
        raise ConvertError(f"{path}: the graph's tokens {name} (shape {list(value.shape)}) are not what the matched "
                           f"ViT has there ({list(shape)})")
    return value


def _compare(path, what, got, want):
    diff = float(np.abs(got.astype(np.float64) - want).max())
    bound = TOLERANCE * max(1.0, float(np.abs(want).max()))
    if not diff <= bound:
        raise ConvertError(f"{path}: the graph matched a ViT op by op, but on a check image {what} differs from "
                           f"that ViT's by {diff:.3g} (bound {bound:.3g}): not converted")
