"""The tensor data types of weights/FORMAT.md ("Tensor data types"): which tensors
may be stored in bf16 or int8, and their bytes.

Everything is computed in float32 from the f32 weights, as FORMAT.md states it.
"""

import numpy as np

DTYPES = ("f32", "bf16", "int8")
CODES = {"f32": 0, "bf16": 1, "int8": 2}
ALIGN = 64


def is_linear_weight(name, shape):
    """Only these may be bf16/int8: the 2-D `*.weight` tensors (FORMAT.md)."""
    return len(shape) == 2 and name.endswith(".weight")


def to_bf16_bits(array):
    """float32 -> bf16 bit patterns (uint16), rounded to nearest, ties to even."""
    bits = np.ascontiguousarray(array, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2")


def quantize_rows(array):
    """Symmetric per-row int8: (q [O, I] int8, scale [O] float32).

    scale[o] = max|W[o, :]| / 127 (0 for an all-zero row);
    q = round_half_even(W / scale), clamped to [-127, 127].
    """
    w = np.ascontiguousarray(array, dtype=np.float32)
    scale = (np.abs(w).max(axis=1) / np.float32(127)).astype(np.float32)
    divisor = np.where(scale > 0, scale, np.float32(1))[:, None]  # an all-zero row stays 0
    q = np.clip(np.rint(w / divisor), -127, 127).astype(np.int8)
    return q, scale


def encode(name, array, dtype):
    """(dtype code, the tensor's stored values as an array, C-ordered except an f32 view, which
    the writer lays out) for a canonical tensor.

    `dtype` applies to linear weights; every other tensor stays f32.
    """
    array = np.asarray(array, dtype="<f4")
    if dtype == "f32" or not is_linear_weight(name, array.shape):
        return CODES["f32"], array
    if dtype == "bf16":
        return CODES["bf16"], to_bf16_bits(array)
    if dtype == "int8":
        q, scale = quantize_rows(array)
        padding = -q.size % ALIGN
        return CODES["int8"], np.concatenate([q.reshape(-1).view(np.uint8), np.zeros(padding, np.uint8),
                                              scale.astype("<f4").view(np.uint8)])
    raise ValueError(f"unknown dtype {dtype!r} (expected one of {', '.join(DTYPES)})")
