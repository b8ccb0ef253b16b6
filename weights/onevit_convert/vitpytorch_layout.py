"""Pieces the mappers of the vit-pytorch-style layouts (and the Flax patch-encoder ViT) share: collecting canonical tensors with their origins, the
class token / position embedding shapes, and the (p1 p2 c) → (c, y, x) patch reordering.

vit-pytorch embeds patches with `Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)')` and a
Linear: input feature (y·P + x)·C + c. The canonical convolution weight [D, C, P, P] reads
patch pixel (c, y, x), so weight[d, c, y, x] = W[d, (y·P + x)·C + c]: a pure permutation
(exact). A LayerNorm over the flattened patch is permutation-equivariant, so its weight and
bias are permuted the same way into the canonical (c, y, x) order.
"""

import numpy as np

from .errors import ConvertError
from .mapped import MappedCheckpoint
from .tensors import as_f32, expect_ndim, shape_str, squeeze_leading


class Collector:
    """Canonical tensors and, for messages, the checkpoint names they came from."""

    def __init__(self, family, src):
        self.family, self.src = family, src
        self.out, self.origin = {}, {}

    def get(self, name, ndim=None):
        array = as_f32(name, self.src[name])
        return array if ndim is None else expect_ndim(name, array, ndim)

    def put(self, canonical, name, array=None, ndim=None):
        self.out[canonical] = np.ascontiguousarray(self.get(name, ndim) if array is None else array)
        self.origin[canonical] = name

    def mapped(self, depth, notes=None):
        return MappedCheckpoint(self.family, self.out, self.origin, depth, notes=notes or [])


def class_token(c, name):
    """cls_token as [1, D]: vit-pytorch stores [1, 1, D]; [1, D] and [D] are accepted too."""
    array = c.get(name)
    if array.ndim == 1:
        array = array[None]
    return squeeze_leading(name, array, 2)


def position_embedding(c, name):
    """pos_embedding as [n + 1, D]: stored [1, n + 1, D] (or [n + 1, D])."""
    return squeeze_leading(name, c.get(name), 2)


def linear_patch_weight(c, name, spec):
    """vit-pytorch's patch Linear [D, P·P·C] in (p1 p2 c) order → conv weight [D, C, P, P]."""
    w = c.get(name, 2)
    p, ch = spec.patch_size, spec.channels
    if w.shape[1] != p * p * ch:
        raise ConvertError(f"{spec.source} says patch_size={p}, channels={ch} (patch_dim "
                           f"{p}·{p}·{ch} = {p * p * ch}), but tensor {name} has shape "
                           f"{shape_str(w.shape)}: patch_dim={w.shape[1]}")
    return w.reshape(w.shape[0], p, p, ch).transpose(0, 3, 1, 2)


def patch_vector(c, name, spec):
    """A [P·P·C] vector in (p1 p2 c) order → the canonical (c, y, x) order."""
    v = c.get(name, 1)
    p, ch = spec.patch_size, spec.channels
    if v.shape[0] != p * p * ch:
        raise ConvertError(f"{spec.source} says patch_size={p}, channels={ch} (patch_dim "
                           f"{p * p * ch}), but tensor {name} has shape {shape_str(v.shape)}")
    return v.reshape(p, p, ch).transpose(2, 0, 1).reshape(-1)


# A block's canonical tensors, under blocks.N.; each vit-pytorch-style layout names
# them relative to transformer.layers.N. in its table of block names. qkv has no bias.
_CANONICAL_BLOCK = {"norm1": "norm1", "qkv": "attn.qkv", "proj": "attn.proj", "norm2": "norm2",
                    "fc1": "mlp.fc1", "fc2": "mlp.fc2"}


def _block_layers(depth, names, attn_proj):
    """(canonical prefix, checkpoint prefix, parts) for every layer of every block."""
    for i in range(depth):
        for key, source in names.items():
            if key == "proj" and not attn_proj:
                continue
            parts = ("weight",) if key == "qkv" else ("weight", "bias")
            yield f"blocks.{i}.{_CANONICAL_BLOCK[key]}", f"transformer.layers.{i}.{source}", parts


def block_keys(depth, names, attn_proj):
    """The checkpoint names the blocks must have."""
    return [f"{source}.{part}" for _, source, parts in _block_layers(depth, names, attn_proj)
            for part in parts]


def put_blocks(c, depth, names, attn_proj):
    for canonical, source, parts in _block_layers(depth, names, attn_proj):
        for part in parts:
            c.put(f"{canonical}.{part}", f"{source}.{part}", ndim=2 if canonical.endswith("qkv") else None)
