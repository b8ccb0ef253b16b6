"""OpenCLIP and OpenAI CLIP visual towers (open_clip's VisionTransformer) → canonical tensors.

    visual.conv1.weight [D, C, P, P] (no bias)         the patch embedding
    visual.class_embedding [D]; visual.positional_embedding [1 + G, D]
    visual.ln_pre.*                                     a norm before the blocks (not with no_ln_pre)
    visual.transformer.resblocks.N.
        ln_1.*, ln_2.*                                  LayerNorm, eps 1e-5
        attn.in_proj_{weight [3D, D], bias}             nn.MultiheadAttention: rows q, k, v
        attn.out_proj.*
        ls_1.gamma, ls_2.gamma                          LayerScale (ls_init_value): folded
        mlp.c_fc.*, mlp.c_proj.*                        Linear, GELU or QuickGELU, Linear
    visual.ln_post.*                                    on every token, then the pooling (or, with
                                                        final_ln_after_pool, on the pooled vector)
    visual.proj [D, E]                                  pooled @ proj: the image embedding
    (a full CLIP's text tower, logit_scale and OpenAI's input_resolution, context_length and
    vocab_size entries are not read; a visual-only state dict has no 'visual.' prefix)

What the tensors cannot show — heads, activation, pooling, where ln_post goes, the eval
preprocessing — comes from the open_clip model name (--arch ViT-B-32, ViT-B-32-quickgelu, ...;
open_clip's own configs, openclip_registry.json), an open_clip_config.json (a hub folder's) or
--heads/--gelu. The embedding is what encode_image gives: the projected pooled vector.
"""

import os
import re
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from . import snapshot
from .errors import ConvertError
from .mapped import MappedCheckpoint
from .posembed import square_image
from .preprocess import Preprocessing
from .spec import ModelSpec
from .tensors import as_f32, block_count, expect_keys, expect_ndim, shape_str

FAMILY = "openclip"
DESCRIPTION = ("OpenCLIP / OpenAI CLIP visual tower (visual.conv1.weight, visual.class_embedding, "
               "visual.positional_embedding, visual.ln_pre.*, visual.transformer.resblocks.N.{ln_1,"
               "attn.in_proj_*,attn.out_proj.*,ln_2,mlp.c_fc.*,mlp.c_proj.*}, visual.ln_post.*, visual.proj)")
_REGISTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openclip_registry.json")
# OpenAI's `clip` package keeps these beside the weights in its state dicts.
_OPENAI_EXTRAS = ("input_resolution", "context_length", "vocab_size")
# vision_cfg features the engine does not run: refused by name.
_REFUSED = {"attentional_pool": "an attentional pooler (attentional_pool)", "qk_norm": "q/k norm (qk_norm)",
            "scaled_cosine_attn": "scaled cosine attention", "scale_heads": "per-head attention scales",
            "scale_attn_inner": "a norm inside attention (scale_attn_inner)",
            "scale_attn": "a norm after attention (scale_attn)", "scale_fc": "a norm inside the MLP (scale_fc)"}


@dataclass
class OpenClipArch:
    """What --arch (an open_clip model name), an open_clip_config.json and --heads/--gelu say."""
    source: str
    name: Optional[str] = None
    vision: Dict[str, object] = field(default_factory=dict)  # open_clip's vision_cfg (registry or config)
    quick_gelu: Optional[bool] = None
    preprocess: Dict[str, object] = field(default_factory=dict)  # open_clip's preprocess_cfg
    heads: Optional[int] = None
    gelu: Optional[str] = None


def _snapshot():
    return snapshot.load(_REGISTRY)


def is_name(name):
    """An open_clip model name (a pretrained tag after ':' or '/' ignored)?"""
    return name is not None and re.split(r"[:/]", name)[0] in _snapshot()["models"] or \
        name is not None and re.match(r"^(ViT|EVA|coca_ViT|convnext|RN)", name) is not None


def describe(name, heads, gelu):
    """The description of an open_clip model name (its config, as open_clip registers it)."""
    base = re.split(r"[:/]", name)[0]
    entry = _snapshot()["models"].get(base)
    if entry is None:
        raise ConvertError(f"--arch {name}: not one of open_clip's ViT configs whose vision tower onevit reads "
                           f"(those built on timm or on other encoders are not); known: "
                           f"{', '.join(list(_snapshot()['models'])[:12])}, ...")
    vision = {k: v for k, v in entry.items() if k not in ("quick_gelu", "embed_dim")}
    return OpenClipArch(source=f"--arch {name}", name=base, vision=vision, quick_gelu=entry["quick_gelu"],
                        heads=heads, gelu=gelu)


def from_config(path, data):
    """An open_clip_config.json: {"model_cfg": {..., "vision_cfg": {...}}, "preprocess_cfg": {...}}."""
    model = data.get("model_cfg")
    if not isinstance(model, dict) or not isinstance(model.get("vision_cfg"), dict):
        raise ConvertError(f"{path}: an open_clip config needs model_cfg.vision_cfg")
    vision = model["vision_cfg"]
    if vision.get("timm_model_name"):
        raise ConvertError(f"{path}: the vision tower is timm's {vision['timm_model_name']} inside open_clip "
                           f"(visual.trunk.*), which onevit does not read as such")
    pre = data.get("preprocess_cfg") or {}
    return OpenClipArch(source=path, vision=dict(vision), quick_gelu=bool(model.get("quick_gelu", False)),
                        preprocess=pre if isinstance(pre, dict) else {})


def is_config(data):
    return "model_cfg" in data and isinstance(data.get("model_cfg"), dict) and "vision_cfg" in data["model_cfg"]


def _prefix(keys):
    for p in ("visual.", ""):
        if p + "conv1.weight" in keys and p + "transformer.resblocks.0.attn.in_proj_weight" in keys:
            return p
    return None


def matches(keys):
    return _prefix(keys) is not None or "visual.trunk.patch_embed.proj.weight" in keys


def to_canonical(src):
    keys = set(src)
    openai = any(k in keys for k in _OPENAI_EXTRAS)
    if "visual.trunk.patch_embed.proj.weight" in keys:
        raise ConvertError(f"{FAMILY} checkpoint: its vision tower is a timm model inside open_clip "
                           f"(visual.trunk.*, visual.head.*), which onevit does not read as such")
    p = _prefix(keys)
    own = {k for k in keys if k.startswith(p)} if p else {k for k in keys if not k.startswith("visual.")}
    if p:  # a full CLIP: the text tower and the extras are not read
        src = {k: src[k] for k in own}
    else:
        own = {k for k in own if k not in _OPENAI_EXTRAS}
    keys = own
    b0 = p + "transformer.resblocks."
    depth = block_count(keys, re.escape(b0) + r"(\d+)\.", FAMILY)
    required = [p + "conv1.weight", p + "class_embedding", p + "positional_embedding", p + "ln_post.weight",
                p + "ln_post.bias", p + "proj"]
    optional = [p + "ln_pre.weight", p + "ln_pre.bias"]
    layer_scale = b0 + "0.ls_1.gamma" in keys
    for i in range(depth):
        b = f"{b0}{i}."
        for n in ("ln_1", "ln_2", "attn.out_proj", "mlp.c_fc", "mlp.c_proj"):
            required += [f"{b}{n}.weight", f"{b}{n}.bias"]
        required += [b + "attn.in_proj_weight", b + "attn.in_proj_bias"]
        if layer_scale:
            required += [b + "ls_1.gamma", b + "ls_2.gamma"]
    expect_keys(keys, required, optional, FAMILY)

    out, origin = {}, {}

    def put(canonical, name, array=None):
        out[canonical], origin[canonical] = (as_f32(name, src[name]) if array is None else array), name

    put("patch_embed.weight", p + "conv1.weight")
    expect_ndim(p + "conv1.weight", out["patch_embed.weight"], 4)
    dim = out["patch_embed.weight"].shape[0]
    out["patch_embed.bias"], origin["patch_embed.bias"] = np.zeros(dim, np.float32), "zeros (conv1 has no bias)"
    cls = as_f32(p + "class_embedding", src[p + "class_embedding"])
    if cls.shape != (dim,):
        raise ConvertError(f"tensor {p}class_embedding has shape {shape_str(cls.shape)}; expected [{dim}]")
    put("prefix_tokens", p + "class_embedding", cls.reshape(1, dim))
    put("pos_embed", p + "positional_embedding")
    expect_ndim(p + "positional_embedding", out["pos_embed"], 2)
    if p + "ln_pre.weight" in keys:
        put("norm_pre.weight", p + "ln_pre.weight")
        put("norm_pre.bias", p + "ln_pre.bias")
    for i in range(depth):
        b, c = f"{b0}{i}.", f"blocks.{i}."
        for ours, theirs in (("norm1", "ln_1"), ("attn.proj", "attn.out_proj"), ("norm2", "ln_2"),
                             ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
            put(f"{c}{ours}.weight", f"{b}{theirs}.weight")
            put(f"{c}{ours}.bias", f"{b}{theirs}.bias")
        put(c + "attn.qkv.weight", b + "attn.in_proj_weight")
        put(c + "attn.qkv.bias", b + "attn.in_proj_bias")
        if layer_scale:
            # x + γ·(W a + b) = x + (γ W) a + γ b
            for gamma, layer in ((b + "ls_1.gamma", c + "attn.proj"), (b + "ls_2.gamma", c + "mlp.fc2")):
                g = as_f32(gamma, src[gamma]).reshape(-1)
                if g.shape != out[layer + ".bias"].shape:
                    raise ConvertError(f"tensor {gamma} has shape {shape_str(src[gamma].shape)}; expected [{dim}]")
                out[layer + ".weight"] = out[layer + ".weight"] * g[:, None]
                out[layer + ".bias"] = out[layer + ".bias"] * g
    proj = as_f32(p + "proj", src[p + "proj"])
    if proj.ndim != 2 or proj.shape[0] != dim:
        raise ConvertError(f"tensor {p}proj has shape {shape_str(proj.shape)}; expected [{dim}, E] (pooled @ proj)")
    # ln_post: on every token (final norm) or, with final_ln_after_pool, on the pooled vector: the
    # spec decides (the tensors are the same); held under norm.* until then.
    put("norm.weight", p + "ln_post.weight")
    put("norm.bias", p + "ln_post.bias")
    put("pool_proj.weight", p + "proj", np.ascontiguousarray(proj.T))
    out["pool_proj.bias"], origin["pool_proj.bias"] = np.zeros(proj.shape[1], np.float32), "zeros (proj has no bias)"
    mapped = MappedCheckpoint(FAMILY, out, origin, depth, pool="token", pool_proj_act="none",
                              embedding="open_clip encode_image (the pooled vector @ visual.proj)")
    mapped.openai = openai
    return mapped


def spec(arch, mapped, openai_extras=False):
    """The ModelSpec; `arch` an OpenClipArch (or None: only what the tensors and defaults say)."""
    arch = arch or OpenClipArch(source="the checkpoint")
    t = mapped.tensors
    pe = t["patch_embed.weight"]
    dim, channels, patch = (int(v) for v in pe.shape[:3])
    v = arch.vision
    for key, feature in _REFUSED.items():
        if v.get(key):
            raise ConvertError(f"{arch.source}: the vision tower uses {feature}, which the engine cannot run")
    if v.get("act_kwargs") or v.get("norm_kwargs"):
        raise ConvertError(f"{arch.source}: act_kwargs/norm_kwargs {v.get('act_kwargs') or v.get('norm_kwargs')} "
                           f"are not read")
    evidence = f"{mapped.origin['patch_embed.weight']} {shape_str(pe.shape)}"
    for key, found in (("width", dim), ("patch_size", patch), ("layers", mapped.depth)):
        if key in v and v[key] != found and arch.heads is None:
            raise ConvertError(f"{arch.source} says {key}={v[key]}, but the checkpoint has {found} ({evidence}): "
                               f"give its own open_clip name, or --heads N")
    heads = arch.heads
    if heads is None and getattr(mapped, "openai", False) and dim % 64 == 0:
        heads = dim // 64  # OpenAI's clip/model.py: vision_heads = vision_width // 64
        mapped.notes.append(f"OpenAI CLIP state dict: {heads} heads of 64")
    if heads is None:
        if "head_width" in v or "width" in v:
            heads = int(v.get("width", dim)) // int(v.get("head_width", 64))
        else:
            raise ConvertError(f"the checkpoint is an OpenCLIP/CLIP visual tower of width {dim}, depth {mapped.depth}, "
                               f"patch {patch}: its heads and activation cannot be read from the weights; pass --arch "
                               f"with its open_clip name (e.g. ViT-B-32, ViT-B-32-quickgelu) or --heads N and --gelu")
    if dim % heads:
        raise ConvertError(f"{arch.source}: width {dim} is not a multiple of {heads} heads")
    gelu = arch.gelu
    if gelu is None:
        if arch.quick_gelu is not None:
            gelu = "quick" if arch.quick_gelu else "erf"
        elif getattr(mapped, "openai", False):
            gelu = "quick"
            mapped.notes.append("OpenAI CLIP state dict (input_resolution, vocab_size): QuickGELU")
        else:
            raise ConvertError(f"{arch.source}: an OpenCLIP checkpoint's MLP activation (GELU or QuickGELU) cannot "
                               f"be read from its weights: pass --arch with its open_clip name (e.g. ViT-B-32 or "
                               f"ViT-B-32-quickgelu) or --gelu erf|quick")
    pool_type = v.get("pool_type", "tok")
    if pool_type not in ("tok", "avg"):
        raise ConvertError(f"{arch.source}: pool_type {pool_type!r} is not supported ('tok', 'avg')")
    if v.get("no_ln_pre") and "norm_pre.weight" in t:
        raise ConvertError(f"{arch.source} says no_ln_pre, but the checkpoint has ln_pre")
    if v.get("final_ln_after_pool"):
        t["head_norm.weight"], t["head_norm.bias"] = t.pop("norm.weight"), t.pop("norm.bias")
        mapped.origin["head_norm.weight"] = mapped.origin.pop("norm.weight")
        mapped.origin["head_norm.bias"] = mapped.origin.pop("norm.bias")
    mapped.pool = "mean_patches" if pool_type == "avg" else "token"
    image = square_image(mapped, 1, patch)
    if "image_size" in v and v["image_size"] not in (image, [image, image]):
        mapped.notes.append(f"{arch.source} is for {v['image_size']} inputs; the checkpoint's position embedding "
                            f"is for {image}x{image}, which is used")
    return ModelSpec(source=arch.source, image_height=image, image_width=image, channels=channels, patch_size=patch,
                     dim=dim, depth=mapped.depth, heads=heads, head_dim=dim // heads,
                     mlp_dim=int(t["blocks.0.mlp.fc1.weight"].shape[0]), norm_eps=1e-5, gelu=gelu,
                     preprocess=_preprocess(arch, image), num_classes=0, prefix_tokens=1, qkv_bias=True)


def _preprocess(arch, image):
    """open_clip's eval transform: Resize(image, bicubic) of the shorter side ('shortest'), CenterCrop, the
    OpenAI mean/std, unless a preprocess_cfg says otherwise."""
    d = _snapshot()["preprocess_defaults"]
    p = dict(d, **{k: v for k, v in arch.preprocess.items() if v is not None})
    mode = p.get("resize_mode", "shortest")
    interpolation = p.get("interpolation", "bicubic")
    if interpolation not in ("bicubic", "bilinear", "nearest"):
        raise ConvertError(f"{arch.source}: preprocess interpolation {interpolation!r} is not supported")
    mean, std = tuple(float(x) for x in p["mean"]), tuple(float(x) for x in p["std"])
    if mode == "shortest":
        return Preprocessing("shorter_then_crop", image, interpolation, mean, std)
    if mode == "squash":
        return Preprocessing("direct", image, interpolation, mean, std)
    raise ConvertError(f"{arch.source}: preprocess resize_mode {mode!r} cannot be expressed as a .ovit recipe")
