"""Meeting of the two halves: what --arch/--config says and what the weights show.

Every value both sides know is compared, and a contradiction is an error naming
both values; only then is the final Architecture fixed and each tensor's shape
checked against the canonical table.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from . import relpos, rope
from .architecture import Architecture
from .canonical import canonical_tensors
from .errors import ConvertError
from .features import FEATURES
from .preprocess import Preprocessing, google_default
from .tensors import as_f32, name_list, shape_str


@dataclass
class ModelFile:
    """Everything one .ovit file holds."""
    arch: Architecture
    preprocess: Preprocessing
    labels: Optional[List[str]]
    tensors: List[Tuple[str, np.ndarray]]   # canonical order, float32 (views kept: ovit_writer lays out)
    # What the RoPE tables are computed from (rope.tensors), for another input size.
    rope: Optional[object] = None
    rope_freqs: Optional[np.ndarray] = None
    rel_pos: Optional[object] = None        # ... and the relative position bias (relpos.tensors)
    rel_pos_params: Optional[dict] = None
    embedding: Optional[str] = None         # what the embedding is, in the source library's terms

    @property
    def parameter_count(self):
        return sum(int(a.size) for _, a in self.tensors)


@dataclass
class _Shapes:
    """Sizes read off the canonical tensors of a mapped checkpoint."""
    dim: int
    channels: int
    patch: int
    prefix_tokens: int
    pos_tokens: Optional[int]   # None: no pos_embed (feature no_pos_embed)
    inner: int
    mlp: int
    classes: int


def _axis(mapped, name, axis):
    array = mapped.tensors[name]
    if array.ndim <= axis:
        raise ConvertError(f"tensor {mapped.origin[name]} has shape {shape_str(array.shape)}; "
                           f"expected at least {axis + 1} dimensions")
    return int(array.shape[axis])


def _read_shapes(mapped):
    pe = mapped.tensors["patch_embed.weight"]
    if pe.ndim != 4 or pe.shape[2] != pe.shape[3]:
        raise ConvertError(f"tensor {mapped.origin['patch_embed.weight']} has shape "
                           f"{shape_str(pe.shape)}; expected square patches [D, C, P, P]")
    qkv_rows = _axis(mapped, "blocks.0.attn.qkv.weight", 0)
    if qkv_rows % 3:
        raise ConvertError(f"tensor {mapped.origin['blocks.0.attn.qkv.weight']} has {qkv_rows} rows, "
                           f"not a multiple of 3 (q, k, v)")
    t = mapped.tensors
    return _Shapes(dim=int(pe.shape[0]), channels=int(pe.shape[1]), patch=int(pe.shape[2]),
                   prefix_tokens=_axis(mapped, "prefix_tokens", 0) if "prefix_tokens" in t else 0,
                   pos_tokens=_axis(mapped, "pos_embed", 0) if "pos_embed" in t else None,
                   inner=qkv_rows // 3,
                   # fc2 reads the hidden width (a gated fc1 has twice as many rows).
                   mlp=_axis(mapped, "blocks.0.mlp.fc2.weight", 1),
                   classes=_axis(mapped, "head.weight", 0) if "head.weight" in t else 0)


def _describe(mapped, shapes):
    heads = f", heads={mapped.heads}" if mapped.heads else ""
    return (f"a {mapped.family} ViT with dim={shapes.dim}, depth={mapped.depth}{heads}, "
            f"mlp_dim={shapes.mlp}, patch={shapes.patch}, channels={shapes.channels}, "
            f"{shapes.pos_tokens} position embeddings, {shapes.classes} classes")


def assemble(mapped, spec, labels=None):
    """ModelFile from a MappedCheckpoint and a ModelSpec (None: neither --arch nor --config)."""
    t, origin = mapped.tensors, mapped.origin
    shapes = _read_shapes(mapped)
    if spec is None:
        raise ConvertError(
            f"the checkpoint looks like {_describe(mapped, shapes)}, but the number of attention "
            f"heads, the LayerNorm epsilon, the GELU form and the preprocessing cannot be read from "
            f"the weights: pass --arch NAME, --config FILE or (timm) --heads N")

    def evidence(name):
        return f"{origin[name]} → {name} {shape_str(t[name].shape)}"

    def agree(what, stated, found, proof):
        if stated != found:
            raise ConvertError(f"{spec.source} says {what}={stated}, but the checkpoint has "
                               f"{what}={found} ({proof})")

    agree("dim", spec.dim, shapes.dim, evidence("patch_embed.weight"))
    agree("channels", spec.channels, shapes.channels, evidence("patch_embed.weight"))
    agree("patch_size", spec.patch_size, shapes.patch, evidence("patch_embed.weight"))
    agree("depth", spec.depth, mapped.depth, "highest block index + 1")
    fc1_rows = _axis(mapped, "blocks.0.mlp.fc1.weight", 0)
    if fc1_rows != shapes.mlp * (2 if "swiglu" in mapped.features else 1):
        # The checkpoint disagrees with itself: named before any stated size is compared with it.
        raise ConvertError(f"tensor {evidence('blocks.0.mlp.fc2.weight')} reads {shapes.mlp} hidden features, "
                           f"but {evidence('blocks.0.mlp.fc1.weight')} writes {fc1_rows}")
    agree("mlp_dim", spec.mlp_dim, shapes.mlp, evidence("blocks.0.mlp.fc2.weight"))
    agree("heads×head_dim", spec.inner_dim, shapes.inner,
          evidence("blocks.0.attn.qkv.weight") + ", a third of its rows")
    if mapped.heads is not None:
        agree("heads", spec.heads, mapped.heads, "the [D, H, Dh] query kernel of block 0")
    if spec.num_classes is not None:
        agree("num_classes", spec.num_classes, shapes.classes,
              evidence("head.weight") if "head.weight" in t else "no head.weight: no classifier")
    if spec.prefix_tokens is not None:
        agree("prefix_tokens", spec.prefix_tokens, shapes.prefix_tokens,
              (evidence("prefix_tokens") if "prefix_tokens" in t else "no cls/reg/dist tokens") +
              ": class token, then distillation or register tokens")
    qkv_bias = "blocks.0.attn.qkv.bias" in t
    if spec.qkv_bias is not None:
        agree("qkv_bias", spec.qkv_bias, qkv_bias, "presence of the q/k/v biases")
    attn_proj = "blocks.0.attn.proj.weight" in t
    if spec.attn_proj is not None:
        agree("attention output projection", spec.attn_proj, attn_proj,
              "presence of " + origin.get("blocks.0.attn.proj.weight", "the block-0 output projection"))
    head = "distilled" if "head_dist.weight" in t else "mlp" if "head_hidden.weight" in t else \
        "linear" if "head.weight" in t else "none"
    head_hidden = _axis(mapped, "head_hidden.weight", 0) if head == "mlp" else 0
    if spec.head_hidden is not None:
        agree("head hidden width", spec.head_hidden, head_hidden,
              evidence("head_hidden.weight") if head == "mlp" else "no hidden head layer")

    for side, size in (("height", spec.image_height), ("width", spec.image_width)):
        if size % spec.patch_size:
            raise ConvertError(f"{spec.source}: image {side} {size} is not a multiple of "
                               f"patch size {spec.patch_size}")
    grid = spec.grid_tokens
    tokens = shapes.prefix_tokens + grid
    if shapes.pos_tokens is None:
        pass                                 # no_pos_embed: checked with the tensor set below
    elif mapped.family == "timm" and shapes.prefix_tokens and shapes.pos_tokens == grid:
        # timm no_embed_class=True: the prefix tokens (class, registers) get no position
        # embedding. Zero rows for them give the canonical [T + G, D] layout, identical results.
        t["pos_embed"] = np.concatenate(
            [np.zeros((shapes.prefix_tokens, shapes.dim), np.float32), t["pos_embed"]], axis=0)
        mapped.notes.append("pos_embed has no rows for the prefix tokens (timm no_embed_class); "
                            "added zero rows")
    elif shapes.pos_tokens != tokens:
        raise ConvertError(
            f"{spec.source} implies {tokens} position tokens ({shapes.prefix_tokens} prefix + a "
            f"{spec.image_height // spec.patch_size}x{spec.image_width // spec.patch_size} patch grid "
            f"for {spec.image_height}x{spec.image_width} images), but the checkpoint has "
            f"{shapes.pos_tokens} ({evidence('pos_embed')})")

    final_norm, head_norm = "norm.weight" in t, "head_norm.weight" in t
    if mapped.pool is not None:
        pool = mapped.pool  # the checkpoint's own model pools this way
    elif spec.family is not None:
        # A constructor config fixes the pooling; the norms are whatever its tensors hold
        # (its mapper has checked them against the model's module structure).
        pool = spec.pool or "token"
    else:
        pool = _timm_pool(mapped, spec)

    arch = Architecture(
        family=mapped.family, image_height=spec.image_height, image_width=spec.image_width,
        channels=spec.channels, patch_size=spec.patch_size, dim=spec.dim, depth=spec.depth,
        heads=spec.heads, head_dim=spec.head_dim, mlp_dim=spec.mlp_dim,
        num_classes=shapes.classes, prefix_tokens=shapes.prefix_tokens,
        norm_eps=spec.norm_eps,
        # Google weights keep the config's GELU, erf from the --arch table: timm runs them
        # (and its models converted from them) with exact nn.GELU, although the Flax
        # original used jax.nn.gelu's tanh form; a config with hidden_act=gelu_new picks tanh.
        gelu=spec.gelu,
        attn_scale=float(np.float32(spec.head_dim ** -0.5 if spec.attn_scale is None else spec.attn_scale)),
        qkv_bias=qkv_bias, attn_proj=attn_proj, final_norm=final_norm, pool=pool,
        head_norm=head_norm, head=head, patch_norm="patch_embed.norm_in.weight" in t,
        head_hidden=head_hidden, class_token=mapped.class_token, norm_pre="norm_pre.weight" in t,
        features=tuple(f for f in FEATURES if f in mapped.features),
        rope_layout=rope.layout_of(mapped.rope) if mapped.rope is not None else "",
        rope_per_block=mapped.rope is not None and mapped.rope.kind == "mixed",
        pool_heads=spec.pool_heads, pool_prefix=spec.pool_prefix,
        pool_mlp_dim=_axis(mapped, "attn_pool.fc1.weight", 0) if "attn_pool_shape" in mapped.features else 0,
        pool_proj=_axis(mapped, "pool_proj.weight", 0) if "pool_proj.weight" in t else 0,
        pool_proj_act=mapped.pool_proj_act if "pool_proj.weight" in t else "none")
    if mapped.rope is not None:
        t.update(rope.tensors(arch, mapped.rope, mapped.rope_freqs))
    if mapped.rel_pos is not None:
        t.update(relpos.tensors(arch, mapped.rel_pos, mapped.rel_pos_params))
        for name in t:
            origin.setdefault(name, "computed (timm's RoPE or relative position bias for this grid)")
    if not attn_proj and arch.inner_dim != arch.dim:
        raise ConvertError(f"attention has no output projection, so heads×head_dim="
                           f"{arch.inner_dim} must equal dim={arch.dim}")

    expected = canonical_tensors(arch)
    expected_names = [name for name, _ in expected]
    missing = [n for n in expected_names if n not in t]
    extra = sorted(set(t) - set(expected_names))
    if missing or extra:
        raise ConvertError(f"canonical tensors do not match the architecture: missing "
                           f"{name_list(missing) or 'none'}; unexpected {name_list(extra) or 'none'}")
    ordered = []
    for name, shape in expected:
        if tuple(t[name].shape) != shape:
            raise ConvertError(f"tensor {origin.get(name, name)} → {name} has shape "
                               f"{shape_str(t[name].shape)}, expected {shape_str(shape)} for "
                               f"dim={arch.dim}, heads×head_dim={arch.inner_dim}, "
                               f"mlp_dim={arch.mlp_dim}, classes={arch.num_classes}")
        # Folding and concatenation could in principle overflow; check the final values too.
        ordered.append((name, as_f32(name, t[name])))

    return ModelFile(arch, _preprocessing(mapped, spec, arch), _labels(spec, labels, arch), ordered,
                     rope=mapped.rope, rope_freqs=mapped.rope_freqs, rel_pos=mapped.rel_pos,
                     rel_pos_params=mapped.rel_pos_params, embedding=mapped.embedding)


def _timm_pool(mapped, spec):
    """arch.pool for timm's global_pool: 'token' (x[:, 0]), 'avg' (the mean of the patch tokens,
    registers excluded: mean_patches) or 'map' (the attn_pool head, whose tensors show it)."""
    stated = spec.global_pool
    if "attn_pool.query" in mapped.tensors:
        if stated not in (None, "map"):
            raise ConvertError(f"{spec.source} says global_pool={stated!r}, but the checkpoint has an "
                               f"attention-pooling head (attn_pool.*, global_pool='map')")
        return "map"
    if stated == "map":
        raise ConvertError(f"{spec.source} says global_pool='map', but the checkpoint has no attn_pool.* tensors")
    if stated is None:
        # timm's fc_norm defaults to on exactly for global_pool='avg' (no registered model
        # sets it otherwise), and without a class token the average is its only pooling.
        stated = "avg" if mapped.fc_norm or not mapped.class_token else "token"
        if stated == "avg":
            mapped.notes.append("no global_pool stated: 'avg', as the checkpoint's "
                                + ("fc_norm implies" if mapped.fc_norm else "lack of a class token implies"))
    if stated not in ("token", "avg"):
        raise ConvertError(f"{spec.source}: global_pool={stated!r} is not supported "
                           f"(only 'token', 'avg' and 'map')")
    if stated == "token" and not mapped.class_token:
        raise ConvertError(f"{spec.source} says global_pool='token', but the checkpoint has no class "
                           f"token (cls_token)")
    return "mean_patches" if stated == "avg" else "token"


def _preprocessing(mapped, spec, arch):
    pre = spec.preprocess
    if mapped.family == "google" and spec.preprocess_is_default:
        # The --arch table holds timm's recipe; Google's weights were fine-tuned and evaluated
        # with vit_jax's direct bilinear resize and (x - 127.5) / 127.5.
        pre = google_default(arch.image_height, arch.channels)
    if len(pre.mean) != arch.channels or len(pre.std) != arch.channels:
        raise ConvertError(f"{spec.source}: mean {list(pre.mean)} and std {list(pre.std)} need one "
                           f"value per channel ({arch.channels})")
    if not all(s > 0 for s in pre.std):
        raise ConvertError(f"{spec.source}: std {list(pre.std)} must be positive")
    if pre.resize != "direct" and pre.resize_size < max(arch.image_height, arch.image_width):
        raise ConvertError(f"{spec.source}: resize_size {pre.resize_size} is smaller than the "
                           f"{arch.image_height}x{arch.image_width} crop")
    return pre


def _labels(spec, labels, arch):
    source = "--labels"
    if labels is None:
        labels, source = spec.labels, spec.source
    if labels is not None and len(labels) != arch.num_classes:
        raise ConvertError(f"{source} gives {len(labels)} labels, but the model has "
                           f"{arch.num_classes} classes (head.weight)")
    return labels
