"""Rotary position tables (`rope.cos`, `rope.sin`), computed as timm computes them.

timm (layers/pos_embed_sincos.py) makes its RoPE from the patch grid, never from stored
tensors (except mixed RoPE's learned frequencies), so the converter computes the tables for
the file's grid: per patch token a row of head_dim angles' cosines and sines, in the layout
the model rotates with ("interleaved": pairs (2i, 2i+1), timm's default; "half": pairs
(i, i + head_dim/2), rotate_half). Angles are formed in float32 as timm forms them, their
sine and cosine taken in float64 and rounded once. Prefix tokens are not rotated: their rows
are cos 1, sin 0.

  axial (Eva rope_type 'cat', in_pixels=False): bands_j = 1 / temperature^(j / B), B = head_dim/4;
      per axis a the angle pos_a · bands_j, pos_a = (index + grid_offset) [· ref / size];
  dinov3: periods_j = temperature^(2j / (head_dim/2)); angle 2π · c_a / periods_j with
      c_a = 2 · (index + 0.5 + grid_offset) / size − 1;
  mixed: per block and head, angle t_x · fx_j + t_y · fy_j with the learned frequencies
      freqs [2, depth, heads, head_dim/2] (timm RotaryEmbeddingMixed).
The two axes' angles are concatenated (axis 0's bands, then axis 1's), axis order (row, column)
for grid_indexing 'ij' and (column, row) for 'xy'.
"""

import numpy as np

from .errors import ConvertError

F32 = np.float32


def grid(feat_shape, centered=False, grid_offset=0.0, grid_indexing="ij", ref_feat_shape=None):
    """timm _build_grid ('index' or 'centered' with 'separate' normalisation): [H·W, 2] float32,
    row-major over the grid, coordinate channels in grid_indexing order."""
    shape = list(feat_shape)
    ref = None if ref_feat_shape is None else list(ref_feat_shape)
    if grid_indexing == "xy":
        shape = shape[::-1]
        ref = None if ref is None else ref[::-1]
    if centered:
        axes = [(np.arange(0.5, s, dtype=F32) + F32(grid_offset)) / F32(s) for s in shape]
    else:
        axes = [np.arange(s).astype(F32) + F32(grid_offset) for s in shape]
    if ref is not None:
        axes = [x / F32(f) * F32(r) for x, f, r in zip(axes, shape, ref)]
    coords = np.stack(np.meshgrid(*axes, indexing=grid_indexing), axis=-1).astype(F32)
    if centered:
        coords = F32(2.0) * coords - F32(1.0)
    return coords.reshape(-1, 2)


def _layout(values, layout):
    return np.concatenate([values, values], axis=-1) if layout == "half" else np.repeat(values, 2, axis=-1)


def _tables(angles, layout):
    """cos, sin of float32 angles [..., head_dim/2] in `layout`, float32 [..., head_dim]."""
    wide = angles.astype(np.float64)
    return _layout(np.cos(wide).astype(F32), layout), _layout(np.sin(wide).astype(F32), layout)


def axial(feat_shape, head_dim, temperature, grid_offset, grid_indexing, ref_feat_shape, layout):
    """Eva's rope_type 'cat' (RotaryEmbeddingCat, in_pixels=False): cos, sin [H·W, head_dim]."""
    bands_count = head_dim // 4
    exponent = np.arange(bands_count).astype(F32) / F32(bands_count)
    bands = F32(1.0) / np.power(F32(temperature), exponent, dtype=F32)
    coords = grid(feat_shape, False, grid_offset, grid_indexing, ref_feat_shape)
    angles = (coords[:, :, None] * bands[None, None, :]).reshape(coords.shape[0], -1)
    return _tables(angles, layout)


def dinov3(feat_shape, head_dim, temperature, grid_offset, grid_indexing, layout):
    """Eva's rope_type 'dinov3' (RotaryEmbeddingDinoV3, periods from the temperature): cos, sin [H·W, head_dim]."""
    count = head_dim // 4
    exponent = F32(2.0) * np.arange(count).astype(F32) / F32(head_dim // 2)
    periods = np.power(F32(temperature), exponent, dtype=F32)
    coords = grid(feat_shape, True, grid_offset, grid_indexing)
    angles = (F32(2 * np.pi) * coords[:, :, None] / periods[None, None, :]).reshape(coords.shape[0], -1)
    return _tables(angles, layout)


def mixed(feat_shape, freqs, grid_indexing):
    """Eva's rope_type 'mixed' (RotaryEmbeddingMixed): freqs [2, depth, heads, head_dim/2] → cos, sin
    [depth, heads, H·W, head_dim], interleaved."""
    coords = grid(feat_shape, False, 0.0, grid_indexing)
    freqs = np.asarray(freqs, F32)
    angles = (coords[:, 0, None] * freqs[0][:, :, None, :]) + (coords[:, 1, None] * freqs[1][:, :, None, :])
    return _tables(angles.astype(F32), "interleaved")


def with_prefix(table, prefix, value):
    """`prefix` rows of `value` (cos 1, sin 0: not rotated) before the patch rows (axis -2)."""
    shape = list(table.shape)
    shape[-2] = prefix
    return np.concatenate([np.full(shape, value, F32), table], axis=-2)


def layout_of(settings):
    """arch.rope_layout of timm's settings (timm_architecture.Rope): mixed RoPE is interleaved always."""
    return "half" if settings.rotate_half and settings.kind != "mixed" else "interleaved"


def tensors(arch, settings, freqs=None):
    """{name: table} of a model's RoPE for its grid (arch: the file's Architecture; settings: timm's
    rope arguments; freqs: mixed RoPE's learned frequencies)."""
    shape = (arch.image_height // arch.patch_size, arch.image_width // arch.patch_size)
    layout, prefix = layout_of(settings), arch.prefix_tokens
    if settings.kind == "mixed":
        want = (2, arch.depth, arch.heads, arch.head_dim // 2)
        if freqs is None or tuple(freqs.shape) != want:
            got = "none" if freqs is None else "[" + ", ".join(map(str, freqs.shape)) + "]"
            raise ConvertError(f"tensor rope.freqs has shape {got}; mixed RoPE needs [{', '.join(map(str, want))}] "
                               f"(xy, depth, heads, head_dim/2)")
        cos, sin = mixed(shape, freqs, settings.grid_indexing)
        out = {}
        for n in range(arch.depth):
            out[f"blocks.{n}.attn.rope.cos"] = with_prefix(cos[n], prefix, 1.0)
            out[f"blocks.{n}.attn.rope.sin"] = with_prefix(sin[n], prefix, 0.0)
        return out
    if settings.kind == "dinov3":
        cos, sin = dinov3(shape, arch.head_dim, settings.temperature, settings.grid_offset, settings.grid_indexing,
                          layout)
    else:
        cos, sin = axial(shape, arch.head_dim, settings.temperature, settings.grid_offset, settings.grid_indexing,
                         settings.ref_feat_shape, layout)
    return {"rope.cos": with_prefix(cos, prefix, 1.0), "rope.sin": with_prefix(sin, prefix, 0.0)}
