"""Hugging Face transformers' DINOv3 ViT (DINOv3ViTModel, model_type dinov3_vit) → canonical tensors.

    embeddings.{cls_token, register_tokens [1, R, D], mask_token (unused), patch_embeddings.*}
    layer.N.{norm1, attention.{q,k,v,o}_proj, layer_scale1.lambda1, norm2,
             mlp.{up,down}_proj | mlp.{gate,up,down}_proj (use_gated_mlp), layer_scale2.lambda1}
    norm                                                  the final norm; pooler_output = token 0

(`model.layer.N` in memory under transformers 5; save_pretrained and the hub write `layer.N`.)
There is no position table: RoPE on the patch tokens' q and k, rotate_half, periods
rope_theta^(4j / head_dim) over patch centres in [-1, 1] — timm's rope_type 'dinov3' — computed
for the file's grid (rope.py). k has no bias (zeros); LayerScale is folded; a gated MLP is the
`swiglu` feature, fc1 = [gate_proj; up_proj].
"""

import numpy as np

from .mapped import MappedCheckpoint
from .tensors import block_count, expect_keys
from .timm_architecture import Rope

FAMILY = "hf"
PREFIXES = ("", "model.")   # the encoder's layers: the hub's names, and transformers 5's in memory


def layers_prefix(keys):
    """The prefix of the encoder's layers when `keys` are a DINOv3 ViT's, else None."""
    for p in PREFIXES:
        if p + "layer.0.attention.q_proj.weight" in keys and "embeddings.patch_embeddings.weight" in keys:
            return p
    return None


def rope(theta):
    """timm's RoPE settings that compute DINOv3ViTRopePositionEmbedding's tables."""
    return Rope(kind="dinov3", temperature=float(theta), grid_offset=0.0, grid_indexing="ij", rotate_half=True,
                ref_feat_shape=None)


def to_canonical(m, keys, p):
    """`m`: transformers_vit's _Mapper over the checkpoint (text towers dropped)."""
    depth = block_count(keys, r"(?:model\.)?layer\.(\d+)\.", FAMILY)
    gated = p + "layer.0.mlp.gate_proj.weight" in keys
    mlp = ("gate_proj", "up_proj", "down_proj") if gated else ("up_proj", "down_proj")
    e = "embeddings."
    required = [e + "cls_token", e + "patch_embeddings.weight", "norm.weight", "norm.bias"]
    optional = [e + "patch_embeddings.bias", e + "register_tokens", e + "mask_token"]
    for i in range(depth):
        b = f"{p}layer.{i}."
        required += [b + n for n in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
                                     "layer_scale1.lambda1", "layer_scale2.lambda1")]
        for n in [f"attention.{q}_proj" for q in "qkvo"] + [f"mlp.{n}" for n in mlp]:
            required.append(f"{b}{n}.weight")
            optional.append(f"{b}{n}.bias")
    expect_keys(keys, required, optional, FAMILY)

    m.put("patch_embed.weight", e + "patch_embeddings.weight")
    dim = m.out["patch_embed.weight"].shape[0]
    if e + "patch_embeddings.bias" in keys:
        m.put("patch_embed.bias", e + "patch_embeddings.bias")
    else:
        m.out["patch_embed.bias"], m.origin["patch_embed.bias"] = np.zeros(dim, np.float32), "zeros"
    m.prefix_tokens([e + n for n in ("cls_token", "register_tokens") if e + n in keys], dim)
    for i in range(depth):
        b, c = f"{p}layer.{i}.", f"blocks.{i}."
        m.norm(c + "norm1", b + "norm1")
        attn = [f"{b}attention.{q}_proj" for q in "qkv"]
        if any(a + ".bias" in keys for a in attn):
            for a in attn:  # key_bias=False (the default): zeros, as a bias-free Linear
                if a + ".bias" not in keys:
                    m.src[a + ".bias"] = np.zeros(m.get(a + ".weight").shape[0], np.float32)
        m.stacked(c + "attn.qkv", attn, bias_optional=True)
        m.linear(c + "attn.proj", b + "attention.o_proj")
        m.norm(c + "norm2", b + "norm2")
        if gated:
            m.stacked(c + "mlp.fc1", [b + "mlp.gate_proj", b + "mlp.up_proj"], bias_optional=True)
            if c + "mlp.fc1.bias" not in m.out:  # mlp_bias=False
                m.out[c + "mlp.fc1.bias"] = np.zeros(m.out[c + "mlp.fc1.weight"].shape[0], np.float32)
                m.origin[c + "mlp.fc1.bias"] = "zeros"
        else:
            m.linear(c + "mlp.fc1", b + "mlp.up_proj")
        m.linear(c + "mlp.fc2", b + "mlp.down_proj")
        m.fold_scale(c + "attn.proj", b + "layer_scale1.lambda1")
        m.fold_scale(c + "mlp.fc2", b + "layer_scale2.lambda1")
    m.norm("norm", "norm")
    mapped = MappedCheckpoint(FAMILY, m.out, m.origin, depth, pool="token",
                              embedding="transformers DINOv3ViTModel pooler_output (the normed class token)")
    mapped.features = ["no_pos_embed", "rope"] + (["swiglu"] if gated else [])
    return mapped
