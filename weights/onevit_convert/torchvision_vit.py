"""torchvision's VisionTransformer (torchvision.models.vit_b_16, ...) state dicts → canonical tensors.

    conv_proj.{weight [D, C, P, P], bias}       the patch embedding
    class_token [1, 1, D]; encoder.pos_embedding [1, 1 + G, D]
    encoder.layers.encoder_layer_N.
        ln_1.*, ln_2.*                          LayerNorm, eps 1e-6
        self_attention.in_proj_{weight [3D, D], bias}   nn.MultiheadAttention: rows q, k, v,
                                                each head-major, as the canonical qkv
        self_attention.out_proj.*               the attention's output projection
        mlp.0.*, mlp.3.*                        Linear, exact GELU, Linear (before torchvision
                                                0.13: mlp.linear_1, mlp.linear_2)
    encoder.ln.*                                the final norm
    heads.head.*                                the classifier on token 0, after
    heads.pre_logits.*                          a Linear + tanh when representation_size is set
                                                (→ pool_proj, tanh)

The heads are not in the weights: they come from torchvision's architecture name (--arch
vit_b_16, ...; a checkpoint whose width, patch and depth are exactly one architecture's is
named by them), or --heads. The eval preprocessing is that of a torchvision weight set
(--weights, the enum member's name), as its transforms() gives it (ImageClassification), and so
are its class names.
"""

import json
import os
import re
from dataclasses import dataclass
from typing import Optional

from .errors import ConvertError
from .mapped import MappedCheckpoint
from .posembed import square_image
from .preprocess import Preprocessing
from .spec import ModelSpec
from .tensors import as_f32, block_count, expect_keys, expect_ndim, shape_str, squeeze_leading

FAMILY = "torchvision"
DESCRIPTION = ("torchvision VisionTransformer (conv_proj.*, class_token, encoder.pos_embedding, "
               "encoder.layers.encoder_layer_N.{ln_1,self_attention.{in_proj_*,out_proj.*},ln_2,mlp.{0,3}}.*, "
               "encoder.ln.*, heads.head.*)")

_BLOCK = r"encoder\.layers\.encoder_layer_(\d+)\."
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision.models.vision_transformer: name → (patch, layers, heads, hidden, mlp).
ARCHITECTURES = {"vit_b_16": (16, 12, 12, 768, 3072), "vit_b_32": (32, 12, 12, 768, 3072),
                 "vit_l_16": (16, 24, 16, 1024, 4096), "vit_l_32": (32, 24, 16, 1024, 4096),
                 "vit_h_14": (14, 32, 16, 1280, 5120)}
# Each architecture's weight sets (ViT_*_Weights members): crop size, resize size and
# interpolation of its ImageClassification transform (ImageNet mean/std in all); the first is
# the enum's DEFAULT.
WEIGHTS = {
    "vit_b_16": {"IMAGENET1K_V1": (224, 256, "bilinear"), "IMAGENET1K_SWAG_E2E_V1": (384, 384, "bicubic"),
                 "IMAGENET1K_SWAG_LINEAR_V1": (224, 224, "bicubic")},
    "vit_b_32": {"IMAGENET1K_V1": (224, 256, "bilinear")},
    "vit_l_16": {"IMAGENET1K_V1": (224, 242, "bilinear"), "IMAGENET1K_SWAG_E2E_V1": (512, 512, "bicubic"),
                 "IMAGENET1K_SWAG_LINEAR_V1": (224, 224, "bicubic")},
    "vit_l_32": {"IMAGENET1K_V1": (224, 256, "bilinear")},
    "vit_h_14": {"IMAGENET1K_SWAG_E2E_V1": (518, 518, "bicubic"), "IMAGENET1K_SWAG_LINEAR_V1": (224, 224, "bicubic")},
}
_CATEGORIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision_categories.json")
_MLP_NAMES = (("mlp.0", "mlp.3"), ("mlp.linear_1", "mlp.linear_2"))


@dataclass
class TorchvisionArch:
    """What --arch / --weights / --heads say about a torchvision ViT."""
    source: str
    name: Optional[str] = None      # a key of ARCHITECTURES
    weights: Optional[str] = None   # a key of WEIGHTS[name]
    heads: Optional[int] = None     # --heads


def is_name(name):
    """torchvision's form (vit_b_16: one letter for the size), which timm's names never take."""
    return name is not None and re.fullmatch(r"vit_[a-z]_\d+", name) is not None


def describe(name, weights, heads):
    """The description --arch/--weights/--heads give, checked before any tensor is read. --weights
    takes torchvision's member names (IMAGENET1K_V1, DEFAULT) or qualified ones
    (ViT_B_16_Weights.IMAGENET1K_V1, which also name the architecture)."""
    if name is not None and name not in ARCHITECTURES:
        raise ConvertError(f"--arch {name}: not a torchvision ViT ({', '.join(ARCHITECTURES)})")
    if weights is not None and "." in weights:
        enum, weights = weights.split(".", 1)
        named = {f"ViT_{n[4:].upper()}_Weights": n for n in ARCHITECTURES}.get(enum)
        if named is None or (name is not None and named != name):
            raise ConvertError(f"--weights {enum}.{weights}: not a weight enum of "
                               f"{name or 'a torchvision ViT'} ({', '.join(f'ViT_{n[4:].upper()}_Weights' for n in ARCHITECTURES)})")
        name = named
    if weights == "DEFAULT" and name is not None:
        weights = next(iter(WEIGHTS[name]))
    if weights is not None:
        names = [name] if name else [n for n in ARCHITECTURES if weights in WEIGHTS[n]]
        if not names or weights not in WEIGHTS[names[0]]:
            known = sorted({w for n in ([name] if name else ARCHITECTURES) for w in WEIGHTS[n]})
            raise ConvertError(f"--weights {weights}: not a torchvision weight set of "
                               f"{name or 'a torchvision ViT'} ({', '.join(known)})")
    source = f"--arch {name}" if name else "--weights" if weights else "--heads"
    return TorchvisionArch(source=source, name=name, weights=weights, heads=heads)


def matches(keys):
    return "conv_proj.weight" in keys and "encoder.pos_embedding" in keys or \
        any(k.startswith("encoder.layers.encoder_layer_") for k in keys)


def to_canonical(src):
    keys = set(src)
    depth = block_count(keys, _BLOCK, FAMILY)
    fc1, fc2 = next((names for names in _MLP_NAMES if f"encoder.layers.encoder_layer_0.{names[0]}.weight" in keys),
                    _MLP_NAMES[0])
    pre_logits = "heads.pre_logits.weight" in keys
    required = ["conv_proj.weight", "conv_proj.bias", "class_token", "encoder.pos_embedding",
                "encoder.ln.weight", "encoder.ln.bias", "heads.head.weight", "heads.head.bias"]
    if pre_logits:
        required += ["heads.pre_logits.weight", "heads.pre_logits.bias"]
    block = {"norm1": "ln_1", "attn.qkv": "self_attention.in_proj", "attn.proj": "self_attention.out_proj",
             "norm2": "ln_2", "mlp.fc1": fc1, "mlp.fc2": fc2}
    for i in range(depth):
        p = f"encoder.layers.encoder_layer_{i}."
        for theirs in block.values():
            if theirs == "self_attention.in_proj":
                required += [p + theirs + "_weight", p + theirs + "_bias"]
            else:
                required += [p + theirs + ".weight", p + theirs + ".bias"]
    expect_keys(keys, required, [], FAMILY)

    out, origin = {}, {}

    def put(canonical, name, array=None):
        out[canonical], origin[canonical] = (as_f32(name, src[name]) if array is None else array), name

    put("patch_embed.weight", "conv_proj.weight")
    expect_ndim("conv_proj.weight", out["patch_embed.weight"], 4)
    put("patch_embed.bias", "conv_proj.bias")
    put("prefix_tokens", "class_token", squeeze_leading("class_token", as_f32("class_token", src["class_token"]), 2))
    put("pos_embed", "encoder.pos_embedding",
        squeeze_leading("encoder.pos_embedding", as_f32("encoder.pos_embedding", src["encoder.pos_embedding"]), 2))
    for i in range(depth):
        p, c = f"encoder.layers.encoder_layer_{i}.", f"blocks.{i}."
        for ours, theirs in block.items():
            if theirs == "self_attention.in_proj":
                put(c + ours + ".weight", p + theirs + "_weight")
                put(c + ours + ".bias", p + theirs + "_bias")
            else:
                put(c + ours + ".weight", p + theirs + ".weight")
                put(c + ours + ".bias", p + theirs + ".bias")
    put("norm.weight", "encoder.ln.weight")
    put("norm.bias", "encoder.ln.bias")
    if pre_logits:
        put("pool_proj.weight", "heads.pre_logits.weight")
        put("pool_proj.bias", "heads.pre_logits.bias")
    put("head.weight", "heads.head.weight")
    put("head.bias", "heads.head.bias")
    embedding = "heads.pre_logits + tanh of the class token" if pre_logits else "the class token after encoder.ln"
    return MappedCheckpoint(FAMILY, out, origin, depth, pool="token", pool_proj_act="tanh",
                            embedding=f"torchvision VisionTransformer: {embedding}, the classifier's input")


def _name_from_shapes(depth, dim, patch, mlp):
    for name, (p, layers, _, hidden, width) in ARCHITECTURES.items():
        if (p, layers, hidden, width) == (patch, depth, dim, mlp):
            return name
    return None


def spec(arch, mapped):
    """The ModelSpec for a torchvision checkpoint; `arch` a TorchvisionArch or None."""
    arch = arch or TorchvisionArch(source="the checkpoint")
    t = mapped.tensors
    pe = t["patch_embed.weight"]
    dim, channels, patch = (int(v) for v in pe.shape[:3])
    mlp = int(t["blocks.0.mlp.fc1.weight"].shape[0])
    name, heads = arch.name, arch.heads
    if name is None and heads is None:
        name = _name_from_shapes(mapped.depth, dim, patch, mlp)
        if name is None:
            raise ConvertError(
                f"the checkpoint is a torchvision ViT with dim={dim}, depth={mapped.depth}, patch={patch}, "
                f"mlp_dim={mlp}, which is none of torchvision's architectures ({', '.join(ARCHITECTURES)}): "
                f"its attention heads cannot be read from the weights; pass --heads N")
        mapped.notes.append(f"dim {dim}, depth {mapped.depth}, patch {patch}, MLP {mlp}: torchvision's {name}")
    if heads is None:
        p, layers, heads, hidden, width = ARCHITECTURES[name]
        for what, stated, actual, proof in (
                ("width", hidden, dim, f" ({mapped.origin['patch_embed.weight']} {shape_str(pe.shape)})"),
                ("patch size", p, patch, ""), ("depth", layers, mapped.depth, ""), ("MLP width", width, mlp, "")):
            if stated != actual:
                raise ConvertError(f"--arch {name}: torchvision's {name} has {what} {stated}, but the "
                                   f"checkpoint's is {actual}{proof}: give its own architecture, or --heads N")
    if dim % heads:
        raise ConvertError(f"{arch.source}: width {dim} is not a multiple of {heads} heads")
    if channels != 3:
        raise ConvertError(f"the checkpoint has {channels} input channels; torchvision's ViTs have 3")
    image = square_image(mapped, 1, patch)
    weights = _weights(arch, name, image, mapped.notes)
    classes = int(t["head.weight"].shape[0])
    return ModelSpec(source=arch.source, image_height=image, image_width=image, channels=channels,
                     patch_size=patch, dim=dim, depth=mapped.depth, heads=heads, head_dim=dim // heads,
                     mlp_dim=mlp, norm_eps=1e-6, gelu="erf", preprocess=_preprocess(weights, name, image),
                     prefix_tokens=1, qkv_bias=True, labels=_labels(name, weights, classes))


def _weights(arch, name, image, notes):
    """The weight set whose transforms() to use: --weights, else the architecture's set for this
    input size (its DEFAULT where several are), else None."""
    sets = WEIGHTS.get(name, {})
    if arch.weights is not None:
        if name is not None and arch.weights not in sets:
            raise ConvertError(f"--weights {arch.weights}: not a weight set of torchvision's {name} "
                               f"({', '.join(sets)})")
        return arch.weights
    fitting = [w for w, (crop, _, _) in sets.items() if crop == image]
    if not fitting:
        notes.append(f"no torchvision weight set is for {image}x{image} inputs: preprocessing resizes the "
                     f"shorter side to {image} (bilinear), centre crop, ImageNet mean/std")
        return None
    others = [w for w in sets if w != fitting[0]]
    notes.append(f"preprocessing of torchvision's {name} {fitting[0]} weights"
                 + (f" (--weights picks {', '.join(others)})" if others else ""))
    return fitting[0]


def _preprocess(weights, name, image):
    """ImageClassification(crop_size, resize_size, interpolation): Resize([resize]) of the shorter
    side, CenterCrop(crop), ImageNet mean/std."""
    if weights is None:
        return Preprocessing("shorter_then_crop", image, "bilinear", IMAGENET_MEAN, IMAGENET_STD)
    recipes = {s[weights] for n, s in WEIGHTS.items() if weights in s and (name is None or n == name)}
    if len(recipes) > 1:  # --weights and --heads for a checkpoint of no torchvision architecture
        raise ConvertError(f"--weights {weights}: its preprocessing differs between torchvision's architectures: "
                           f"give --arch too")
    crop, resize, interpolation = recipes.pop()
    if crop != image:
        raise ConvertError(f"--weights {weights} is for {crop}x{crop} inputs, but the checkpoint's "
                           f"position embedding is for {image}x{image}")
    return Preprocessing("shorter_then_crop", resize, interpolation, IMAGENET_MEAN, IMAGENET_STD)


def _labels(name, weights, classes):
    """The weight set's category names: torchvision's own, from a snapshot (torchvision_categories.json,
    written by tests/fixtures/make_torchvision_categories.py) rather than importing torch and torchvision."""
    if weights is None or name is None:
        return None
    with open(_CATEGORIES, encoding="utf-8") as f:
        snapshot = json.load(f)
    if f"ViT_{name[4:].upper()}_Weights.{weights}" not in snapshot["weight_sets"] or \
            classes != len(snapshot["categories"]):
        return None
    return list(snapshot["categories"])
