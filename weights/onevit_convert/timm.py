"""timm `VisionTransformer` / DeiT state dicts (reference-facts 3.1) → canonical tensors.

timm's names are already nearly canonical; the work here is the optional parts:
the DeiT distillation token and head, LayerScale (folded away), and fc_norm.
"""

import numpy as np

from .errors import ConvertError
from .mapped import MappedCheckpoint
from .tensors import as_f32, block_count, expect_keys, expect_ndim, reject_features, \
    shape_str, squeeze_leading

FAMILY = "timm"
DESCRIPTION = ("timm (patch_embed.proj.weight, cls_token, pos_embed, "
               "blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*, norm.*, head.*; "
               "optional dist_token + head_dist.*, blocks.N.ls1/ls2.gamma, fc_norm.*)")

_BLOCK = r"blocks\.(\d+)\."
_UNSUPPORTED = [
    (r"^reg_token$", "register tokens (reg_token)"),
    (r"^norm_pre\.", "a LayerNorm before the blocks (norm_pre)"),
    (r"^patch_embed\.norm\.", "a LayerNorm after the patch embedding (patch_embed.norm)"),
    (r"^blocks\.\d+\.attn\.[qk]_norm\.", "query/key normalisation (attn.q_norm/k_norm)"),
    (r"^blocks\.\d+\.attn\.norm\.", "a norm inside attention (attn.norm)"),
    (r"^blocks\.\d+\.mlp\.norm\.", "a norm inside the MLP (mlp.norm)"),
    (r"^attn_pool\.", "attention pooling (attn_pool, global_pool='map')"),
    (r"^pre_logits\.", "a pre-logits layer (pre_logits.fc) before the head"),
]

# Per block: timm suffix → canonical suffix (identical apart from the prefix).
_BLOCK_TENSORS = ["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.proj.weight",
                  "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight",
                  "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"]


def matches(keys):
    return "patch_embed.proj.weight" in keys or any(
        k.startswith("blocks.") and k.endswith(".attn.qkv.weight") for k in keys)


def to_canonical(src):
    keys = set(src)
    reject_features(keys, _UNSUPPORTED, FAMILY)
    depth = block_count(keys, _BLOCK, FAMILY)
    # Block 0 decides; a block that differs then shows up as a missing or unexpected key.
    qkv_bias = "blocks.0.attn.qkv.bias" in keys
    distilled = "dist_token" in keys or "head_dist.weight" in keys
    fc_norm = "fc_norm.weight" in keys or "fc_norm.bias" in keys

    required = ["patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed",
                "head.weight", "head.bias"]
    optional = []
    if distilled:
        required += ["dist_token", "head_dist.weight", "head_dist.bias"]
    # With fc_norm, timm makes `norm` an Identity: a checkpoint with both is not timm's.
    required += ["fc_norm.weight", "fc_norm.bias"] if fc_norm else ["norm.weight", "norm.bias"]
    for i in range(depth):
        p = f"blocks.{i}."
        required += [p + s for s in _BLOCK_TENSORS]
        if qkv_bias:
            required.append(p + "attn.qkv.bias")
        optional += [p + "ls1.gamma", p + "ls2.gamma"]
    expect_keys(keys, required, optional, FAMILY)

    out, origin, notes = {}, {}, []

    def put(canonical, name, array=None):
        out[canonical] = as_f32(name, src[name]) if array is None else array
        origin[canonical] = name

    put("patch_embed.weight", "patch_embed.proj.weight")
    expect_ndim("patch_embed.proj.weight", out["patch_embed.weight"], 4)
    put("patch_embed.bias", "patch_embed.proj.bias")
    tokens = [squeeze_leading("cls_token", as_f32("cls_token", src["cls_token"]), 2)]
    if distilled:
        tokens.append(squeeze_leading("dist_token", as_f32("dist_token", src["dist_token"]), 2))
    if tokens[0].shape[1:] != tokens[-1].shape[1:]:
        raise ConvertError(f"cls_token and dist_token widths differ: "
                           f"{tokens[0].shape[1]} vs {tokens[-1].shape[1]}")
    put("prefix_tokens", "cls_token", np.concatenate(tokens, axis=0))
    if distilled:
        origin["prefix_tokens"] = "cls_token + dist_token"
    put("pos_embed", "pos_embed", squeeze_leading("pos_embed", as_f32("pos_embed", src["pos_embed"]), 2))

    folded = 0
    for i in range(depth):
        p = f"blocks.{i}."
        for s in _BLOCK_TENSORS:
            put(p + s, p + s)
        if qkv_bias:
            put(p + "attn.qkv.bias", p + "attn.qkv.bias")
        # LayerScale: x + gamma * (W a + b) == x + (gamma[:, None] * W) a + gamma * b,
        # so folding gamma into the output rows of proj / fc2 is exact algebra.
        for gamma_name, layer in ((p + "ls1.gamma", p + "attn.proj"), (p + "ls2.gamma", p + "mlp.fc2")):
            if gamma_name in keys:
                gamma = squeeze_leading(gamma_name, as_f32(gamma_name, src[gamma_name]), 1)
                weight, bias = out[layer + ".weight"], out[layer + ".bias"]
                if weight.ndim != 2 or gamma.shape[0] != weight.shape[0] or bias.shape != gamma.shape:
                    raise ConvertError(f"tensor {gamma_name} has shape {shape_str(gamma.shape)}, which "
                                       f"does not match {layer}.weight {shape_str(weight.shape)}")
                out[layer + ".weight"] = weight * gamma[:, None]
                out[layer + ".bias"] = bias * gamma
                origin[layer + ".weight"] += f" × {gamma_name}"
                origin[layer + ".bias"] += f" × {gamma_name}"
                folded += 1
    if folded:
        notes.append(f"folded {folded} LayerScale gamma vector(s) into attn.proj / mlp.fc2")

    if fc_norm:
        put("head_norm.weight", "fc_norm.weight")
        put("head_norm.bias", "fc_norm.bias")
    else:
        put("norm.weight", "norm.weight")
        put("norm.bias", "norm.bias")
    put("head.weight", "head.weight")
    put("head.bias", "head.bias")
    if distilled:
        put("head_dist.weight", "head_dist.weight")
        put("head_dist.bias", "head_dist.bias")
    return MappedCheckpoint(FAMILY, out, origin, depth, fc_norm=fc_norm, notes=notes)
