"""Hugging Face `ViTForImageClassification` state dicts → canonical tensors.

The mapping is the inverse of transformers' convert_vit_timm_to_pytorch.py:
q, k and v are separate Linear layers whose rows are stacked into one qkv matrix.
"""

import numpy as np

from .errors import ConvertError
from .mapped import MappedCheckpoint
from .tensors import as_f32, block_count, expect_keys, expect_ndim, reject_features, \
    shape_str, squeeze_leading

FAMILY = "hf"
DESCRIPTION = ("Hugging Face ViTForImageClassification (vit.embeddings.cls_token, "
               "vit.embeddings.position_embeddings, vit.embeddings.patch_embeddings.projection.*, "
               "vit.encoder.layer.N.{layernorm_before,attention.attention.{query,key,value},"
               "attention.output.dense,layernorm_after,intermediate.dense,output.dense}.*, "
               "vit.layernorm.*, classifier.*)")

_PREFIX = "vit."
_BLOCK = r"vit\.encoder\.layer\.(\d+)\."
_UNSUPPORTED = [
    # ViTForImageClassification has no pooler; a checkpoint with one (and a head) was
    # trained with a different model, whose output it is unclear we would reproduce.
    (r"^vit\.pooler\.", "a pooler layer (vit.pooler.dense)"),
    (r"^vit\.embeddings\.mask_token$", "a mask token (ViTForMaskedImageModeling)"),
]

# canonical block suffix → HF block suffix, for the tensors that are a plain rename.
_BLOCK_RENAMES = {
    "norm1.weight": "layernorm_before.weight",
    "norm1.bias": "layernorm_before.bias",
    "attn.proj.weight": "attention.output.dense.weight",
    "attn.proj.bias": "attention.output.dense.bias",
    "norm2.weight": "layernorm_after.weight",
    "norm2.bias": "layernorm_after.bias",
    "mlp.fc1.weight": "intermediate.dense.weight",
    "mlp.fc1.bias": "intermediate.dense.bias",
    "mlp.fc2.weight": "output.dense.weight",
    "mlp.fc2.bias": "output.dense.bias",
}
_TOP_RENAMES = {
    "patch_embed.weight": "vit.embeddings.patch_embeddings.projection.weight",
    "patch_embed.bias": "vit.embeddings.patch_embeddings.projection.bias",
    "norm.weight": "vit.layernorm.weight",
    "norm.bias": "vit.layernorm.bias",
    "head.weight": "classifier.weight",
    "head.bias": "classifier.bias",
}
_QKV = ("query", "key", "value")


def matches(keys):
    return any(k.startswith("vit.embeddings.") or k.startswith("vit.encoder.") for k in keys)


def is_bare_vit_model(keys):
    """A `ViTModel` (no `vit.` prefix, no classifier): recognised only to explain the refusal."""
    return any(k.startswith("embeddings.patch_embeddings.") or k.startswith("encoder.layer.")
               for k in keys)


def to_canonical(src):
    keys = set(src)
    reject_features(keys, _UNSUPPORTED, FAMILY)
    depth = block_count(keys, _BLOCK, FAMILY)
    qkv_bias = "vit.encoder.layer.0.attention.attention.query.bias" in keys

    required = list(_TOP_RENAMES.values()) + ["vit.embeddings.cls_token",
                                              "vit.embeddings.position_embeddings"]
    for i in range(depth):
        p = f"vit.encoder.layer.{i}."
        required += [p + s for s in _BLOCK_RENAMES.values()]
        required += [f"{p}attention.attention.{q}.weight" for q in _QKV]
        if qkv_bias:
            required += [f"{p}attention.attention.{q}.bias" for q in _QKV]
    expect_keys(keys, required, [], FAMILY)

    out, origin = {}, {}
    for canonical, name in _TOP_RENAMES.items():
        out[canonical], origin[canonical] = as_f32(name, src[name]), name
    expect_ndim(_TOP_RENAMES["patch_embed.weight"], out["patch_embed.weight"], 4)
    for canonical, name in (("prefix_tokens", "vit.embeddings.cls_token"),
                            ("pos_embed", "vit.embeddings.position_embeddings")):
        out[canonical] = squeeze_leading(name, as_f32(name, src[name]), 2)
        origin[canonical] = name

    for i in range(depth):
        p = f"vit.encoder.layer.{i}."
        c = f"blocks.{i}."
        for canonical, name in _BLOCK_RENAMES.items():
            out[c + canonical], origin[c + canonical] = as_f32(p + name, src[p + name]), p + name
        parts = ["weight", "bias"] if qkv_bias else ["weight"]
        for part in parts:
            names = [f"{p}attention.attention.{q}.{part}" for q in _QKV]
            arrays = [as_f32(n, src[n]) for n in names]
            for n, a in zip(names, arrays):
                if a.shape != arrays[0].shape or a.ndim != (2 if part == "weight" else 1):
                    raise ConvertError(f"tensor {n} has shape {shape_str(a.shape)}; query, key and "
                                       f"value {part}s must all be {shape_str(arrays[0].shape)} "
                                       f"with {2 if part == 'weight' else 1} dimension(s)")
            # Rows q, then k, then v: the canonical qkv layout, each already head-major.
            out[f"{c}attn.qkv.{part}"] = np.concatenate(arrays, axis=0)
            origin[f"{c}attn.qkv.{part}"] = f"{p}attention.attention.{{query,key,value}}.{part}"
    return MappedCheckpoint(FAMILY, out, origin, depth)
