"""A timm ViT by description: its name, hub config and flags, completed by the checkpoint.

timm builds (nearly) every ViT of vision_transformer.py and deit.py from one class, so the
state dict already shows width, depth, MLP width, patch size, tokens and which optional
layers exist (timm.py). What tensors cannot show comes, first match wins, from:
  1. explicit flags: --heads, --gelu, --norm-eps, --global-pool;
  2. the hub config: model_args (num_heads, act_layer, img_size, ...), top-level global_pool,
     num_classes and pretrained_cfg (input size and eval preprocessing);
  3. the words timm's registry names its models with: the size word gives the heads
     (tiny 3, small 6, medium 8, base 12, large 16, ...), `clip` a LayerNorm eps of 1e-5,
     `quickgelu` QuickGELU, `gap` average pooling, a trailing number the input size;
  4. timm's defaults (LayerNorm eps 1e-6, exact GELU, its _cfg eval recipe).
Every stated value is then cross-checked against the tensors (assemble.py); a feature
the engine cannot run is refused by its name.
"""

import math
import re
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

from . import timm_architecture, timm_registry
from .errors import ConvertError
from .features import check_runnable
from .preprocess import timm_eval
from .spec import ModelSpec
from .tensors import shape_str

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)   # timm's IMAGENET_INCEPTION_MEAN/STD: its _cfg default
INCEPTION_STD = (0.5, 0.5, 0.5)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)   # timm's OPENAI_CLIP_MEAN/STD
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# timm's size words → {embed width: attention heads} of the models registered with that word
# (vision_transformer.py, deit.py). A width outside its word's entry means the name is not
# the checkpoint's, and the heads it would give are a guess.
SIZE_WORDS = {"tiny": {192: 3}, "xsmall": {256: 4}, "wee": {256: 4}, "little": {320: 5}, "small": {384: 6},
              "medium": {512: 8}, "mediumd": {512: 8}, "betwixt": {640: 10},
              "base": {768: 12, 896: 14},     # 896: vit_base_patch{16,32}_plus_*
              "large": {1024: 16}, "huge": {1280: 16},
              "giant": {1408: 16, 1536: 24},  # 1536: DINOv2 / TIPS giant
              "gigantic": {1664: 16}, "giantopt": {1536: 16}, "so400m": {1152: 16}, "so150m": {896: 14},
              "so150m2": {832: 13}, "intern300m": {1024: 16}}
# The registered models whose heads their size word does not give.
_NAME_HEADS = {"vit_base_patch16_gap_224": 16}
# SigLIP (2) towers that timm registers with act_layer='gelu_tanh'; the others use exact GELU.
_TANH_GELU_NAMES = {"vit_base_patch32_siglip_256", "vit_large_patch16_siglip_512",
                    "vit_so400m_patch16_siglip_256", "vit_so400m_patch16_siglip_384",
                    "vit_so400m_patch16_siglip_512", "vit_giantopt_patch16_siglip_256",
                    "vit_giantopt_patch16_siglip_384", "vit_base_patch32_siglip_gap_256",
                    "vit_large_patch16_siglip_gap_512", "vit_so400m_patch16_siglip_gap_256",
                    "vit_so400m_patch16_siglip_gap_384", "vit_so400m_patch16_siglip_gap_512",
                    "vit_giantopt_patch16_siglip_gap_256", "vit_giantopt_patch16_siglip_gap_384"}
# Name words of features whose tensors look like a plain ViT's: refused by the name.
_NAME_REFUSALS = {"rpn": "residual post-norm blocks (ResPostBlock, vit_*_rpn_*)"}
# timm act_layer names → arch.gelu.
ACTIVATIONS = {"gelu": "erf", "gelu_tanh": "tanh", "quick_gelu": "quick"}
GELU_FLAGS = ("erf", "tanh", "quick")
GLOBAL_POOLS = ("token", "avg", "map")

# model_args → description field (int unless noted); the rest are checked or ignored below.
_MODEL_ARGS = {"patch_size": "patch_size", "in_chans": "channels", "embed_dim": "dim",
               "depth": "depth", "num_heads": "heads", "reg_tokens": "register_tokens"}
_MODEL_ARGS_IGNORED = {"init_values", "no_embed_class", "num_classes", "fc_norm", "pre_norm",
                       "final_norm", "drop_rate", "pos_drop_rate", "patch_drop_rate",
                       "proj_drop_rate", "attn_drop_rate", "drop_path_rate", "weight_init",
                       "fix_init", "dynamic_img_size", "dynamic_img_pad", "proj_bias"}
# model_args that select a layer the engine cannot run, whatever their value (but the default).
_MODEL_ARGS_REFUSED = {
    "block_fn": "a block other than timm's pre-norm Block (block_fn={!r})",
    "mlp_layer": "an MLP other than timm's Mlp (mlp_layer={!r})",
    "attn_layer": "an attention other than timm's Attention (attn_layer={!r})",
    "norm_layer": "a norm other than LayerNorm (norm_layer={!r})",
    "embed_norm_layer": "a norm inside the patch embedding (embed_norm_layer={!r})",
    "qk_norm": "query/key normalisation (qk_norm={!r})",
    "scale_attn_norm": "a norm inside attention (scale_attn_norm={!r})",
    "scale_mlp_norm": "a norm inside the MLP (scale_mlp_norm={!r})",
    "pos_embed": "position embedding {!r} (only 'learn')",
}
_MODEL_ARGS_DEFAULTS = {"block_fn": "Block", "mlp_layer": "Mlp", "attn_layer": "attention",
                        "norm_layer": "layernorm", "qk_norm": False, "scale_attn_norm": False,
                        "scale_mlp_norm": False, "pos_embed": "learn", "embed_norm_layer": None}


@dataclass
class Preprocess:
    crop_pct: float = 0.9
    crop_mode: Optional[str] = "center"
    interpolation: str = "bicubic"
    mean: Tuple[float, ...] = INCEPTION_MEAN
    std: Tuple[float, ...] = INCEPTION_STD


@dataclass
class TimmDescription:
    """What is stated about a timm ViT before its tensors are read; None = not stated."""
    source: str                       # how messages name it: "--arch NAME", "config.json"
    name: Optional[str] = None        # timm architecture name, pretrained tag removed
    size_word: Optional[str] = None   # its timm size word (SIZE_WORDS), if any
    dim: Optional[int] = None
    depth: Optional[int] = None
    heads: Optional[int] = None
    mlp_ratio: Optional[float] = None
    patch_size: Optional[int] = None
    channels: Optional[int] = None
    image: Optional[Tuple[int, int]] = None
    class_token: Optional[bool] = None
    register_tokens: Optional[int] = None
    distilled: Optional[bool] = None
    no_embed_class: Optional[bool] = None
    qkv_bias: Optional[bool] = None
    gelu: Optional[str] = None
    norm_eps: Optional[float] = None
    global_pool: Optional[str] = None
    num_classes: Optional[int] = None
    labels: Optional[List[str]] = None
    preprocess: Preprocess = field(default_factory=Preprocess)
    preprocess_given: bool = False    # a pretrained_cfg gave the recipe (not the name's defaults)
    # Where each stated value came from, for messages: field → "model_args.num_heads", ...
    said_by: Dict[str, str] = field(default_factory=dict)
    # timm's registration of the name (timm_registry.py), if its snapshot has it; then the
    # hub config's model_args override the registered arguments, and the class decides.
    registration: Optional[timm_registry.Registration] = None
    model_args: Dict[str, object] = field(default_factory=dict)

    def state(self, field_name, value, by):
        setattr(self, field_name, value)
        self.said_by[field_name] = by

    def architecture(self):
        """What timm's class builds from the registered and the hub's arguments (None for a name
        timm's snapshot lacks); a stated global_pool (config, --global-pool) is one of them."""
        if self.registration is None:
            return None
        args = self.registration.arguments(self.model_args)
        if self.global_pool is not None:
            args["global_pool"] = self.global_pool
        return timm_architecture.describe(self.registration, args)

    def check_runnable(self):
        """Refuses, by the feature's name, a registered architecture the engine cannot run."""
        a = self.architecture()
        if a is None:
            return
        check_runnable(a.features, a.refusals, f"{self.source}: timm's {self.name} ({self.registration.module}.py {a.cls})")

    def spec(self, mapped):
        """The ModelSpec of this description for the canonical tensors of `mapped`."""
        return _spec(self, mapped)


def base_name(name):
    """`timm/vit_base_patch16_224.augreg_in1k` → `vit_base_patch16_224`."""
    base = re.sub(r"^(hf[-_]hub:)?timm/", "", name.strip())
    return re.sub(r"\..*$", "", base)


def describe_name(name, source):
    """A description from timm's registration of the name, else from its words."""
    base = base_name(name)
    registration = timm_registry.lookup(base)
    if registration is not None:
        return _describe_registered(registration, source)
    words = base.split("_")
    d = TimmDescription(source=source, name=base)
    for word, feature in _NAME_REFUSALS.items():
        if word in words:
            raise ConvertError(f"{source}: {base} uses {feature}, which the engine cannot run")
    by = f"the name {base}"
    heads = _NAME_HEADS.get(base)
    size = next((w for w in words if w in SIZE_WORDS), None)
    d.size_word = size
    if heads is not None:
        d.state("heads", heads, by)
    for w in words:
        m = re.fullmatch(r"patch(\d+)", w)
        if m:
            d.state("patch_size", int(m.group(1)), by)
        m = re.fullmatch(r"reg(\d+)", w)
        if m:
            d.state("register_tokens", int(m.group(1)), by)
    if re.fullmatch(r"\d+", words[-1]) and int(words[-1]) >= 32:
        d.state("image", (int(words[-1]), int(words[-1])), by)
    d.state("distilled", "distilled" in words, by)
    if "quickgelu" in words:
        d.state("gelu", "quick", by)
    elif base in _TANH_GELU_NAMES:
        d.state("gelu", "tanh", f"timm's registration of {base} (act_layer='gelu_tanh')")
    if "clip" in words or words[0] == "beit3":
        d.state("norm_eps", 1e-5, f"timm's {words[0]} CLIP towers (LayerNorm eps 1e-5)")
    if "gap" in words:
        d.state("global_pool", "avg", by)
    elif "map" in words:
        d.state("global_pool", "map", by)
    d.preprocess = _default_preprocess(words, d.image)
    return d


def _describe_registered(reg, source):
    """Sizes come from the weights, checked against the registered patch size and the name's input
    size; the rest (heads, norms, activation, pooling, tokens) from the class and its arguments
    once the config's model_args are known (TimmDescription.architecture); the eval recipe from
    the registration's default pretrained_cfg (DeiT's: its own eval, as for unregistered names)."""
    d = TimmDescription(source=source, name=reg.name, registration=reg)
    words = reg.name.split("_")
    by = f"timm's registration of {reg.name}"
    if "patch_size" in reg.model_args:
        d.state("patch_size", int(reg.model_args["patch_size"]), by)
    if re.fullmatch(r"\d+", words[-1]) and int(words[-1]) >= 32:
        d.state("image", (int(words[-1]), int(words[-1])), f"the name {reg.name}")
    if words[0] == "deit":
        d.preprocess = _default_preprocess(words, d.image)
        return d
    cfg, pre = reg.pretrained_cfg, Preprocess()
    for key in ("crop_pct", "crop_mode", "interpolation"):
        if key in cfg:
            pre = replace(pre, **{key: cfg[key]})
    for key in ("mean", "std"):
        if key in cfg:
            pre = replace(pre, **{key: tuple(cfg[key])})
    d.preprocess = pre
    return d


def _registered_image(reg, hub_args):
    """The input size timm builds the name for: img_size, else its pretrained_cfg's input_size."""
    size = hub_args.get("img_size")
    if size is None and "input_size" in reg.pretrained_cfg:
        size = reg.pretrained_cfg["input_size"][1:]
    if size is None:
        size = reg.arguments().get("img_size")
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _default_preprocess(words, image):
    """timm's eval recipe for a name when no pretrained_cfg says otherwise."""
    if words[0] == "deit":
        # DeiT's own eval: Resize(256) = 224 / 0.875, bicubic, ImageNet mean/std.
        return Preprocess(crop_pct=0.875, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if words[0] == "deit3":
        return Preprocess(mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if "dinov2" in words:
        return Preprocess(crop_pct=1.0, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if "clip" in words:
        return Preprocess(mean=CLIP_MEAN, std=CLIP_STD)
    # augreg ViTs: crop_pct 0.9 at 224, 1.0 at 384 and above.
    return Preprocess(crop_pct=1.0 if image and image[0] >= 384 else 0.9)


def apply_model_args(d, path, model_args, as_int, as_hw):
    """model_args of a hub config.json into the description."""
    for key, value in model_args.items():
        by = f"model_args.{key}"
        if d.registration is not None:
            # The class reads every argument (timm_architecture.py); the sizes are also checked
            # against the weights like any stated size.
            d.model_args[key] = timm_registry.hub_argument(d.registration, path, key, value)
            if key not in _MODEL_ARGS and key not in ("mlp_ratio", "img_size"):
                continue
        if key in _MODEL_ARGS:
            d.state(_MODEL_ARGS[key], as_int(path, by, value, 0 if key == "reg_tokens" else 1), by)
        elif key == "mlp_ratio":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConvertError(f"{path}: {by} must be a positive number, got {value!r}")
            d.state("mlp_ratio", float(value), by)
        elif key == "img_size":
            d.state("image", as_hw(path, by, value), by)
        elif key in ("class_token", "qkv_bias", "no_embed_class"):
            d.state(key, bool(value), by)
        elif key == "global_pool":
            d.state("global_pool", str(value), by)
        elif key == "act_layer":
            if value not in ACTIVATIONS:
                raise ConvertError(f"{path}: {by}={value!r}: the engine runs only "
                                   f"{', '.join(ACTIVATIONS)} MLP activations")
            d.state("gelu", ACTIVATIONS[value], by)
        elif key in _MODEL_ARGS_REFUSED:
            if value != _MODEL_ARGS_DEFAULTS[key] and value is not None:
                raise ConvertError(f"{path}: {by}: the engine cannot run "
                                   + _MODEL_ARGS_REFUSED[key].format(value))
        elif key not in _MODEL_ARGS_IGNORED:
            known = sorted(set(_MODEL_ARGS) | set(_MODEL_ARGS_REFUSED) | _MODEL_ARGS_IGNORED |
                           {"mlp_ratio", "img_size", "class_token", "qkv_bias", "global_pool", "act_layer"})
            raise ConvertError(f"{path}: {by} is not understood; known: {', '.join(known)}")


def apply_flags(d, heads=None, gelu=None, norm_eps=None, global_pool=None):
    """Explicit command-line values, which override the config and the name."""
    if heads is not None:
        if heads < 1:
            raise ConvertError(f"--heads {heads}: must be >= 1")
        d.state("heads", heads, "--heads")
    if gelu is not None:
        d.state("gelu", gelu, "--gelu")
    if norm_eps is not None:
        if not math.isfinite(norm_eps) or norm_eps <= 0:
            raise ConvertError(f"--norm-eps {norm_eps}: must be a positive number")
        d.state("norm_eps", norm_eps, "--norm-eps")
    if global_pool is not None:
        d.state("global_pool", global_pool, "--global-pool")
    return d


def _state_registered(d, a):
    """The facts of timm's class that no tensor shows, for what neither the flags nor the config
    stated, and its class (a distilled DeiT or not). (Tokens and the outer norms are the
    checkpoint's: what timm builds is a tensor it loads.)"""
    by = f"timm's {a.cls} as {d.name} is registered"
    for name, value in (("heads", a.heads), ("gelu", a.gelu or "erf"), ("norm_eps", a.norm_eps),
                        ("global_pool", a.global_pool), ("distilled", a.distilled)):
        if getattr(d, name) is None:
            d.state(name, value, by)


def _check_registered_width(d, a, mapped):
    """A registered name whose width the tensors contradict is not the checkpoint's: the heads
    timm registers it with would be a guess (unless --heads or model_args state them)."""
    width = d.registration.arguments(d.model_args).get("embed_dim")
    pe = mapped.tensors["patch_embed.weight"]
    if d.heads is None and d.dim is None and width is not None and pe.ndim == 4 and int(pe.shape[0]) != width:
        word = next((w for w in d.name.split("_") if w in SIZE_WORDS), None)
        named = f"{d.name} (size word '{word}')" if word else d.name
        raise ConvertError(f"{d.source}: timm registers {named} with width {width} ({a.heads} heads), but the "
                           f"checkpoint's tensors have width {int(pe.shape[0])} ({mapped.origin['patch_embed.weight']} "
                           f"{shape_str(pe.shape)}): give the checkpoint's own timm name, or --heads N")


def _spec(d, mapped):
    a = d.architecture()
    if a is not None:
        _check_registered_width(d, a, mapped)
        _state_registered(d, a)
    t = mapped.tensors
    pe = t["patch_embed.weight"]
    if pe.ndim != 4:
        raise ConvertError(f"tensor {mapped.origin['patch_embed.weight']} has {pe.ndim} dimensions; "
                           f"expected a convolution [D, C, P, P]")
    dim = int(pe.shape[0])
    stated_dim = d.dim if d.dim is not None else dim
    heads = _heads(d, stated_dim, mapped)
    mlp_rows = int(t["blocks.0.mlp.fc1.weight"].shape[0])
    mlp_dim = mlp_rows
    if a is not None and (a.mlp != "mlp" or a.block == "parallel_things"):
        # A gated MLP's hidden width is not int(dim · mlp_ratio) in every class (timm's GluMlp
        # halves it, Eva's doubles, SwiGLU aligns it), and folded branches widen it: fc2's input is it.
        mlp_dim = int(t["blocks.0.mlp.fc2.weight"].shape[-1])
    elif d.mlp_ratio is not None:
        # timm: hidden_features=int(dim * mlp_ratio); a mismatch is reported by assemble.
        mlp_dim = int(stated_dim * d.mlp_ratio)
    patch = d.patch_size if d.patch_size is not None else int(pe.shape[2])
    channels = d.channels if d.channels is not None else int(pe.shape[1])
    prefix_found = int(t["prefix_tokens"].shape[0]) if "prefix_tokens" in t else 0
    distilled_found = "head_dist.weight" in t
    class_token = d.class_token if d.class_token is not None else mapped.class_token
    if class_token != mapped.class_token:
        raise ConvertError(f"{d.source} says class_token={class_token} ({d.said_by['class_token']}), but "
                           f"the checkpoint {'has' if mapped.class_token else 'has no'} cls_token")
    distilled = d.distilled if d.distilled is not None else distilled_found
    registers = prefix_found - int(mapped.class_token) - int(distilled_found)
    if d.register_tokens is not None:
        registers = d.register_tokens
    prefix = int(class_token) + registers + int(distilled)
    image = d.image or (_image_from_pos_embed(d, mapped, patch, prefix_found) if "pos_embed" in t
                        or d.registration is None else _registered_image(d.registration, d.model_args))
    pre = d.preprocess
    if d.image is None and not d.preprocess_given and d.registration is None and image[0] >= 384:
        pre = replace(pre, crop_pct=1.0)
    preprocess = timm_eval(d.source, image[0], image[1], pre.crop_pct, pre.crop_mode, pre.interpolation,
                           pre.mean, pre.std)
    head_dim = stated_dim // heads
    if a is not None and a.block == "parallel_things":
        # Its branches' heads side by side (timm_blocks.py): head_dim stays, the heads multiply.
        heads *= max(1, int(t["blocks.0.attn.qkv.weight"].shape[0]) // (3 * stated_dim))
    return ModelSpec(source=d.source, image_height=image[0], image_width=image[1], channels=channels,
                     patch_size=patch, dim=stated_dim, depth=d.depth if d.depth is not None else mapped.depth,
                     heads=heads, head_dim=head_dim, mlp_dim=mlp_dim,
                     norm_eps=d.norm_eps if d.norm_eps is not None else 1e-6,
                     gelu=d.gelu or "erf", preprocess=preprocess,
                     preprocess_is_default=not d.preprocess_given, num_classes=d.num_classes,
                     prefix_tokens=prefix, qkv_bias=d.qkv_bias, global_pool=d.global_pool, labels=d.labels,
                     pool_heads=a.pool_heads if a is not None else 0,
                     pool_prefix=a is not None and a.pool_prefix)


def _heads(d, dim, mapped):
    heads, said_by = d.heads, d.said_by.get("heads")
    if heads is None and d.size_word is not None:
        widths = SIZE_WORDS[d.size_word]
        if dim not in widths and d.dim is None:
            # The name is not the checkpoint's. (A config that states the width, as model_args
            # or num_features, describes a resized registered model: timm keeps the name's heads.)
            pe = mapped.tensors["patch_embed.weight"]
            means = " or ".join(f"width {w} ({h} heads)" for w, h in widths.items())
            raise ConvertError(f"{d.source}: the size word '{d.size_word}' of {d.name} means {means}, but "
                               f"the checkpoint's tensors have width {dim} ({mapped.origin['patch_embed.weight']} "
                               f"{shape_str(pe.shape)}): give the checkpoint's own timm name, or --heads N")
        heads = widths.get(dim, next(iter(widths.values())))
        said_by = f"the size word '{d.size_word}' of {d.name}"
    if heads is None:
        what = f"{d.name}'s" if d.name else "the"
        raise ConvertError(
            f"{d.source}: the number of attention heads cannot be read from the weights, and "
            f"{what} name has no timm size word ({', '.join(SIZE_WORDS)}): pass --heads N "
            f"(or model_args.num_heads in --config); the checkpoint has dim={dim}, "
            f"depth={mapped.depth}")
    if dim % heads:
        raise ConvertError(f"{d.source}: embed dim {dim} is not a multiple of {heads} heads "
                           f"({said_by}); pass --heads N")
    return heads


def _image_from_pos_embed(d, mapped, patch, prefix):
    """The input size the position embedding was laid out for, when nothing states it: its
    patch grid (the rows after the prefix tokens, or all rows under no_embed_class), if square."""
    rows = int(mapped.tensors["pos_embed"].shape[0])
    candidates = [rows] if d.no_embed_class else [rows - prefix] if d.no_embed_class is False \
        else [rows - prefix, rows]
    for grid in candidates:
        side = math.isqrt(max(grid, 0))
        if grid > 0 and side * side == grid:
            return side * patch, side * patch
    raise ConvertError(f"{d.source}: the input size is not stated and pos_embed's {rows} rows are no "
                       f"square patch grid: give pretrained_cfg.input_size or model_args.img_size")
