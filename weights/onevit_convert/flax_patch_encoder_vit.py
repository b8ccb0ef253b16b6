"""A JAX/Flax ViT of Patches (a convolution), a PatchEncoder (a Dense projection, class token and
position embedding) and one-LayerNorm encoder blocks, as an .npz → canonical tensors.

The checkpoint is an .npz of the flattened parameter tree, '/'-joined (an optional leading
`params/` is accepted):

    patches/conv/{kernel [P, P, C, E] (HWIO), bias [E]}     nn.Conv, stride P, 'VALID'
    patch_encoder/Dense_0/{kernel [E, Hd], bias [Hd]}       projection to hidden_dim
    patch_encoder/cls_token [1, 1, Hd], patch_encoder/position_embedding [1, n + 1, Hd]
    encoder_{i}/layer_norm/{scale, bias}                    ONE LayerNorm (eps 1e-6), used
                                                            before attention and before the MLP
    encoder_{i}/mha/{q_net,k_net,v_net,proj_net}/{kernel [Hd, Hd], bias [Hd]}
    encoder_{i}/mlp/Dense_0/{kernel [Hd, M], bias}, Dense_1/{kernel [M, Hd], bias}
    head/{kernel [Hd, K], bias [K]}                         Dense(num_classes) on token 0

Attention: head width D = Hd // n_heads, scores / sqrt(D); MLP activation flax.linen.gelu,
whose default is the tanh approximation (arch.gelu = tanh); no final norm.

Mapping: the conv and Dense_0 are folded into one conv exactly, in float64:
W[h, c, y, x] = Σ_e Dense[e, h] · conv[e, c, y, x], b = Denseᵀ · conv_b + dense_b; the one
LayerNorm is written as both norm1 and norm2; Dense kernels [in, out] are transposed to
PyTorch's [out, in] and q, k, v stacked as the rows of qkv.
"""

import math

import numpy as np

from .errors import ConvertError
from .constructor_config import int_pair, pos_int, constructor_preprocess, take_kwargs
from .vitpytorch_layout import Collector, class_token, position_embedding
from .spec import ModelSpec
from .tensors import block_count, expect_keys, shape_str

FAMILY = "flax-seed"
DESCRIPTION = ("Flax ViT with a patch encoder, .npz (patches/conv/*, patch_encoder/{Dense_0/*,cls_token,"
               "position_embedding}, encoder_N/{layer_norm,mha/{q_net,k_net,v_net,proj_net},"
               "mlp/Dense_0,mlp/Dense_1}/*, head/*)")
NEEDS_CONSTRUCTOR_CONFIG = True

_PREFIXES = ("params/", "")
_BLOCK = r"encoder_(\d+)/"


def _prefix(keys):
    for prefix in _PREFIXES:
        if prefix + "patches/conv/kernel" in keys or prefix + "patch_encoder/cls_token" in keys:
            return prefix
    return None


def matches(keys):
    return _prefix(keys) is not None


def _strip(src):
    prefix = _prefix(set(src))
    return {(k[len(prefix):] if prefix and k.startswith(prefix) else k): v for k, v in src.items()}


def spec_from_kwargs(config, src):
    k = take_kwargs(config, FAMILY)
    path = config.path
    src = _strip(src)
    patch = pos_int(path, "patch_size", k["patch_size"])
    hidden, heads = pos_int(path, "hidden_dim", k["hidden_dim"]), pos_int(path, "n_heads", k["n_heads"])
    if hidden % heads:
        raise ConvertError(f"{path}: hidden_dim {hidden} is not a multiple of n_heads {heads} "
                           f"(the attention reshapes to (B, T, n_heads, hidden_dim // n_heads))")
    # The Flax modules take their input size and channels from the images; a config may
    # state them, else they are read off the weights: channels from the conv kernel, the
    # image size from a square grid of position embeddings.
    channels = k["channels"]
    if channels is None:
        kernel = src.get("patches/conv/kernel")
        if kernel is None or kernel.ndim != 4:
            raise ConvertError(f"{path}: give channels (no usable patches/conv/kernel to read "
                               f"it from)")
        channels = int(kernel.shape[2])
    channels = pos_int(path, "channels", channels)
    if k["image_size"] is None:
        pos = src.get("patch_encoder/position_embedding")
        grid = int(pos.shape[-2]) - 1 if pos is not None and pos.ndim >= 2 else 0
        side = math.isqrt(max(grid, 0))
        if grid < 1 or side * side != grid:
            raise ConvertError(f"{path}: give image_size (the position embedding does not hold "
                               f"a square patch grid to read it from)")
        height = width = side * patch
    else:
        height, width = int_pair(path, "image_size", k["image_size"])
    return ModelSpec(
        source=path, image_height=height, image_width=width, channels=channels, patch_size=patch,
        dim=hidden, depth=pos_int(path, "num_layers", k["num_layers"]), heads=heads,
        head_dim=hidden // heads, mlp_dim=pos_int(path, "mlp_dim", k["mlp_dim"]), norm_eps=1e-6,
        gelu="tanh", preprocess=constructor_preprocess(config, height, width, channels),
        num_classes=pos_int(path, "num_classes", k["num_classes"]), prefix_tokens=1,
        qkv_bias=True, labels=config.labels, family=FAMILY, pool="token",
        attn_scale=1 / math.sqrt(hidden // heads), attn_proj=True,
        stated={"embed_dim": pos_int(path, "embed_dim", k["embed_dim"])})


def to_canonical(src, spec):
    prefix = _prefix(set(src))
    src = _strip(src)
    keys = set(src)
    depth = block_count(keys, _BLOCK, FAMILY)
    required = ["patches/conv/kernel", "patches/conv/bias", "patch_encoder/Dense_0/kernel",
                "patch_encoder/Dense_0/bias", "patch_encoder/cls_token",
                "patch_encoder/position_embedding", "head/kernel", "head/bias"]
    for i in range(depth):
        e = f"encoder_{i}/"
        required += [e + "layer_norm/scale", e + "layer_norm/bias"]
        required += [f"{e}mha/{n}/{part}" for n in ("q_net", "k_net", "v_net", "proj_net")
                     for part in ("kernel", "bias")]
        required += [f"{e}mlp/{n}/{part}" for n in ("Dense_0", "Dense_1") for part in ("kernel", "bias")]
    expect_keys(keys, required, [], FAMILY)

    c = Collector(FAMILY, src)
    kernel = c.get("patches/conv/kernel", 4)            # [P, P, C, E]
    conv_b = c.get("patches/conv/bias", 1)
    dense = c.get("patch_encoder/Dense_0/kernel", 2)    # [E, Hd]
    dense_b = c.get("patch_encoder/Dense_0/bias", 1)
    p, ch = spec.patch_size, spec.channels
    if kernel.shape[:3] != (p, p, ch):
        raise ConvertError(f"{spec.source} says patch_size={p}, channels={ch}, but tensor "
                           f"{prefix}patches/conv/kernel has shape {shape_str(kernel.shape)} "
                           f"(expected [{p}, {p}, {ch}, embed_dim])")
    embed = int(kernel.shape[3])
    stated = spec.stated.get("embed_dim")
    if stated is not None and stated != embed:
        raise ConvertError(f"{spec.source} says embed_dim={stated}, but the checkpoint has "
                           f"embed_dim={embed} ({prefix}patches/conv/kernel {shape_str(kernel.shape)})")
    if conv_b.shape != (embed,) or dense.shape[0] != embed or dense_b.shape != dense.shape[1:]:
        raise ConvertError(f"tensors {prefix}patches/conv/bias {shape_str(conv_b.shape)}, "
                           f"{prefix}patch_encoder/Dense_0/kernel {shape_str(dense.shape)} and "
                           f"/bias {shape_str(dense_b.shape)} do not fit a conv with {embed} features")
    conv = kernel.astype(np.float64).transpose(3, 2, 0, 1)          # [E, C, P, P]
    d64 = dense.astype(np.float64)
    folded = np.einsum("eh,ecyx->hcyx", d64, conv)
    folded_b = d64.T @ conv_b.astype(np.float64) + dense_b.astype(np.float64)
    c.put("patch_embed.weight", "patches/conv/kernel", folded.astype(np.float32))
    c.put("patch_embed.bias", "patches/conv/bias", folded_b.astype(np.float32))
    c.origin["patch_embed.weight"] = f"{prefix}patches/conv/kernel × {prefix}patch_encoder/Dense_0/kernel"
    c.origin["patch_embed.bias"] = f"{prefix}patches/conv/bias, {prefix}patch_encoder/Dense_0/*"
    c.put("prefix_tokens", "patch_encoder/cls_token", class_token(c, "patch_encoder/cls_token"))
    c.put("pos_embed", "patch_encoder/position_embedding",
          position_embedding(c, "patch_encoder/position_embedding"))

    for i in range(depth):
        e, b = f"encoder_{i}/", f"blocks.{i}."
        for norm in ("norm1", "norm2"):     # one LayerNorm module, applied twice
            c.put(f"{b}{norm}.weight", e + "layer_norm/scale", ndim=1)
            c.put(f"{b}{norm}.bias", e + "layer_norm/bias", ndim=1)
        qkv = [c.get(f"{e}mha/{n}/kernel", 2) for n in ("q_net", "k_net", "v_net")]
        qkv_b = [c.get(f"{e}mha/{n}/bias", 1) for n in ("q_net", "k_net", "v_net")]
        for n, w, bias in zip(("q_net", "k_net", "v_net"), qkv, qkv_b):
            if w.shape != qkv[0].shape or bias.shape != qkv[0].shape[1:]:
                raise ConvertError(f"tensor {prefix}{e}mha/{n}/kernel {shape_str(w.shape)} / bias "
                                   f"{shape_str(bias.shape)} does not match q_net/kernel "
                                   f"{shape_str(qkv[0].shape)}")
        # (B, T, C) → (B, T, N, D): output features head-major, the canonical order.
        c.put(f"{b}attn.qkv.weight", f"{e}mha/{{q_net,k_net,v_net}}/kernel",
              np.concatenate([w.T for w in qkv], axis=0))
        c.put(f"{b}attn.qkv.bias", f"{e}mha/{{q_net,k_net,v_net}}/bias", np.concatenate(qkv_b))
        c.put(f"{b}attn.proj.weight", f"{e}mha/proj_net/kernel", c.get(f"{e}mha/proj_net/kernel", 2).T)
        c.put(f"{b}attn.proj.bias", f"{e}mha/proj_net/bias", ndim=1)
        for dense_name, fc in (("Dense_0", "fc1"), ("Dense_1", "fc2")):
            c.put(f"{b}mlp.{fc}.weight", f"{e}mlp/{dense_name}/kernel",
                  c.get(f"{e}mlp/{dense_name}/kernel", 2).T)
            c.put(f"{b}mlp.{fc}.bias", f"{e}mlp/{dense_name}/bias", ndim=1)
    c.put("head.weight", "head/kernel", c.get("head/kernel", 2).T)
    c.put("head.bias", "head/bias", ndim=1)
    if prefix:
        c.origin = {k: (v if v.startswith(prefix) else prefix + v) for k, v in c.origin.items()}
    return c.mapped(depth, [f"folded patches/conv ({embed} features) and patch_encoder/Dense_0 "
                            f"into one patch embedding (in float64)"])
