"""Google's original JAX/Flax ViT `.npz` files → canonical tensors.

Flax stores Dense kernels as [in, out] (PyTorch's transpose), the patch
convolution as HWIO, and attention projections per head: q/k/v kernels
[D, H, Dh], biases [H, Dh], and the output kernel [H, Dh, D]. Flattening (H, Dh)
keeps the head-major order the canonical qkv/proj layout wants, as timm's
`_load_weights` does.
"""

import numpy as np

from .errors import ConvertError
from .mapped import MappedCheckpoint
from .tensors import as_f32, block_count, expect_keys, expect_ndim, reject_features, \
    shape_str, squeeze_leading

FAMILY = "google"
DESCRIPTION = ("Google ViT .npz (embedding/kernel, embedding/bias, cls, "
               "Transformer/posembed_input/pos_embedding, "
               "Transformer/encoderblock_N/{LayerNorm_0,MultiHeadDotProductAttention_1/"
               "{query,key,value,out},LayerNorm_2,MlpBlock_3/Dense_0,MlpBlock_3/Dense_1}/..., "
               "Transformer/encoder_norm/*, head/*; optionally all under opt/target/)")

# Checkpoints saved with the optimizer state keep the parameters under this prefix.
_PREFIXES = ("opt/target/", "")
_UNSUPPORTED = [(r"^pre_logits/", "a pre-logits layer (pre_logits, in21k checkpoints)")]
_ATTN = "MultiHeadDotProductAttention_1/"


def _prefix(keys):
    for prefix in _PREFIXES:
        if prefix + "embedding/kernel" in keys:
            return prefix
    return None


def matches(keys):
    return _prefix(keys) is not None


def to_canonical(src):
    prefix = _prefix(set(src))
    # Strip the prefix so messages and lookups use the module paths of models_vit.py;
    # keys outside it (optimizer moments and the like) stay and are reported as unexpected.
    src = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in src.items()}
    keys = set(src)
    reject_features(keys, _UNSUPPORTED, FAMILY)
    depth = block_count(keys, r"Transformer/encoderblock_(\d+)/", FAMILY)

    required = ["embedding/kernel", "embedding/bias", "cls", "Transformer/posembed_input/pos_embedding",
                "Transformer/encoder_norm/scale", "Transformer/encoder_norm/bias",
                "head/kernel", "head/bias"]
    for i in range(depth):
        b = f"Transformer/encoderblock_{i}/"
        for ln in ("LayerNorm_0", "LayerNorm_2"):
            required += [f"{b}{ln}/scale", f"{b}{ln}/bias"]
        for proj in ("query", "key", "value", "out"):
            required += [f"{b}{_ATTN}{proj}/kernel", f"{b}{_ATTN}{proj}/bias"]
        for dense in ("Dense_0", "Dense_1"):
            required += [f"{b}MlpBlock_3/{dense}/kernel", f"{b}MlpBlock_3/{dense}/bias"]
    expect_keys(keys, required, [], FAMILY)

    def get(name, ndim=None):
        array = as_f32(prefix + name, src[name])
        return array if ndim is None else expect_ndim(prefix + name, array, ndim)

    out, origin = {}, {}

    def put(canonical, name, array):
        out[canonical], origin[canonical] = np.ascontiguousarray(array), prefix + name

    put("patch_embed.weight", "embedding/kernel", get("embedding/kernel", 4).transpose(3, 2, 0, 1))
    put("patch_embed.bias", "embedding/bias", get("embedding/bias"))
    put("prefix_tokens", "cls", squeeze_leading(prefix + "cls", get("cls"), 2))
    put("pos_embed", "Transformer/posembed_input/pos_embedding",
        squeeze_leading(prefix + "Transformer/posembed_input/pos_embedding",
                        get("Transformer/posembed_input/pos_embedding"), 2))

    heads = None
    for i in range(depth):
        b = f"Transformer/encoderblock_{i}/"
        c = f"blocks.{i}."
        put(c + "norm1.weight", b + "LayerNorm_0/scale", get(b + "LayerNorm_0/scale"))
        put(c + "norm1.bias", b + "LayerNorm_0/bias", get(b + "LayerNorm_0/bias"))

        kernels = [get(f"{b}{_ATTN}{q}/kernel", 3) for q in ("query", "key", "value")]
        biases = [get(f"{b}{_ATTN}{q}/bias", 2) for q in ("query", "key", "value")]
        first = kernels[0].shape
        for q, k, bias in zip(("query", "key", "value"), kernels, biases):
            if k.shape != first or bias.shape != first[1:]:
                raise ConvertError(
                    f"tensor {prefix}{b}{_ATTN}{q}/kernel {shape_str(k.shape)} / bias "
                    f"{shape_str(bias.shape)} does not match query/kernel {shape_str(first)} "
                    f"(expected [D, H, Dh] and [H, Dh])")
        if heads is None:
            heads = first[1]
        elif first[1] != heads:
            raise ConvertError(f"tensor {prefix}{b}{_ATTN}query/kernel {shape_str(first)} has "
                               f"{first[1]} heads, block 0 has {heads}")
        dim, inner = first[0], first[1] * first[2]
        # [D, H, Dh] → [D, H·Dh] (head-major columns) → transpose to PyTorch's [out, in].
        put(c + "attn.qkv.weight", f"{b}{_ATTN}{{query,key,value}}/kernel",
            np.concatenate([k.reshape(dim, inner).T for k in kernels], axis=0))
        put(c + "attn.qkv.bias", f"{b}{_ATTN}{{query,key,value}}/bias",
            np.concatenate([bias.reshape(inner) for bias in biases], axis=0))
        out_kernel = get(f"{b}{_ATTN}out/kernel", 3)  # [H, Dh, D]
        if out_kernel.shape[:2] != first[1:]:
            raise ConvertError(f"tensor {prefix}{b}{_ATTN}out/kernel {shape_str(out_kernel.shape)} "
                               f"does not start with the [H, Dh] = {shape_str(first[1:])} of query/kernel")
        put(c + "attn.proj.weight", f"{b}{_ATTN}out/kernel",
            out_kernel.reshape(out_kernel.shape[0] * out_kernel.shape[1], out_kernel.shape[2]).T)
        put(c + "attn.proj.bias", f"{b}{_ATTN}out/bias", get(f"{b}{_ATTN}out/bias"))

        put(c + "norm2.weight", b + "LayerNorm_2/scale", get(b + "LayerNorm_2/scale"))
        put(c + "norm2.bias", b + "LayerNorm_2/bias", get(b + "LayerNorm_2/bias"))
        for dense, fc in (("Dense_0", "fc1"), ("Dense_1", "fc2")):
            name = f"{b}MlpBlock_3/{dense}/"
            put(f"{c}mlp.{fc}.weight", name + "kernel", get(name + "kernel", 2).T)
            put(f"{c}mlp.{fc}.bias", name + "bias", get(name + "bias"))

    put("norm.weight", "Transformer/encoder_norm/scale", get("Transformer/encoder_norm/scale"))
    put("norm.bias", "Transformer/encoder_norm/bias", get("Transformer/encoder_norm/bias"))
    put("head.weight", "head/kernel", get("head/kernel", 2).T)
    put("head.bias", "head/bias", get("head/bias"))
    return MappedCheckpoint(FAMILY, out, origin, depth, heads=heads)
