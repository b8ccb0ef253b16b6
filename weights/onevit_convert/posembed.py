"""--image-size: run a model at another input size by resampling its position embedding.

As timm's `resample_abs_pos_embed`: the prefix-token rows stay as they are; the patch-grid
rows, seen as a [D, gh, gw] image, are resampled bicubically to the new grid. Two kernels,
each reproducing PyTorch's `F.interpolate(..., mode='bicubic', align_corners=False)`:

  * "bicubic" (default; `antialias=False`, timm before 0.9, `resize_pos_embed`): output
    index i samples source coordinate s = (i + 0.5)·in/out − 0.5 with the cubic
    convolution kernel of a = −0.75 at floor(s) − 1 … floor(s) + 2, indices clamped to the
    border (their weights add up there);
  * "bicubic-antialias" (`antialias=True`, timm ≥ 0.9's default): PyTorch's separable
    antialiased filter, the cubic kernel with a = −0.5 stretched by in/out when
    downsampling, centred on (i + 0.5)·in/out, taps cut at the border and the weights
    renormalised (as PIL does).

Both are separable, so each is a pair of [out, in] matrices applied in float64 (PyTorch
computes in the tensor's dtype; the difference is float rounding).
"""

import math
import re
from dataclasses import replace

import numpy as np

from . import relpos, rope
from .errors import ConvertError
from .preprocess import Preprocessing, direct

MODES = ("bicubic", "bicubic-antialias")


def square_image(mapped, prefix, patch):
    """The side of the square input a position embedding of `prefix` token rows and a patch grid is
    for (checkpoints that record no input size: torchvision, OpenCLIP)."""
    grid = int(mapped.tensors["pos_embed"].shape[0]) - prefix
    side = math.isqrt(max(grid, 0))
    if grid < 1 or side * side != grid:
        raise ConvertError(f"tensor {mapped.origin['pos_embed']} has {grid + prefix} rows: not {prefix} prefix "
                           f"token(s) and a square patch grid")
    return side * patch


def parse_image_size(text):
    """"H" (square) or "HxW" → (H, W)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX×]\s*(\d+)\s*)?", text or "")
    if not m:
        raise ConvertError(f"--image-size {text!r}: expected H or HxW, e.g. 384 or 224x320")
    h = int(m.group(1))
    w = int(m.group(2)) if m.group(2) else h
    if h < 1 or w < 1:
        raise ConvertError(f"--image-size {text!r}: sides must be positive")
    return h, w


def _cubic1(x, a):   # |x| <= 1
    return ((a + 2) * x - (a + 3)) * x * x + 1


def _cubic2(x, a):   # 1 < |x| < 2
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a


def bicubic_matrix(n_in, n_out):
    """[n_out, n_in]: PyTorch's upsample_bicubic2d (align_corners=False) along one axis."""
    m = np.zeros((n_out, n_in), np.float64)
    scale = n_in / n_out
    a = -0.75
    for i in range(n_out):
        s = scale * (i + 0.5) - 0.5          # not clamped at 0 for the cubic mode
        base = math.floor(s)
        t = s - base
        weights = (_cubic2(t + 1, a), _cubic1(t, a), _cubic1(1 - t, a), _cubic2(2 - t, a))
        for j, w in enumerate(weights):
            m[i, min(max(base - 1 + j, 0), n_in - 1)] += w
    return m


def _aa_filter(x):
    x = abs(x)
    if x < 1:
        return _cubic1(x, -0.5)
    if x < 2:
        return _cubic2(x, -0.5)
    return 0.0


def bicubic_antialias_matrix(n_in, n_out):
    """[n_out, n_in]: PyTorch's _upsample_bicubic2d_aa (align_corners=False) along one axis."""
    m = np.zeros((n_out, n_in), np.float64)
    scale = n_in / n_out
    support = 2.0 * scale if scale >= 1.0 else 2.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    for i in range(n_out):
        centre = scale * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)     # int(): truncation, as the C++ cast
        hi = min(int(centre + support + 0.5), n_in)
        w = np.array([_aa_filter((j - centre + 0.5) * invscale) for j in range(lo, hi)])
        total = w.sum()
        m[i, lo:hi] = w / total if total != 0 else w
    return m


def resample_grid(grid, size, mode="bicubic"):
    """grid [gh, gw, D] → [H, W, D] in float64."""
    if mode not in MODES:
        raise ConvertError(f"position embedding resampling {mode!r}: expected one of {', '.join(MODES)}")
    make = bicubic_matrix if mode == "bicubic" else bicubic_antialias_matrix
    gh, gw, _ = grid.shape
    mh, mw = make(gh, size[0]), make(gw, size[1])
    return np.einsum("ih,hwd,jw->ijd", mh, grid.astype(np.float64), mw)


def scaled_preprocess(pre, old_hw, new_hw):
    """The recipe for the new size: crop (or resize) to it, the shorter-side resize scaled by
    the same factor as the crop (resize_size · new / old on the longer model side, floored)."""
    if pre.resize == "direct":
        return direct(new_hw[0], pre.interpolation, pre.mean, pre.std)
    if pre.resize == "squash_then_crop" and new_hw[0] != new_hw[1]:
        raise ConvertError(f"--image-size {new_hw[0]}x{new_hw[1]}: a squash-then-crop recipe is square only")
    size = max(new_hw) * pre.resize_size // max(old_hw)
    return Preprocessing(pre.resize, max(size, max(new_hw)), pre.interpolation, pre.mean, pre.std)


def resize_model(model, size, mode="bicubic"):
    """The ModelFile for input size (H, W): pos_embed's grid rows resampled, arch and recipe
    updated. Returns (ModelFile, note)."""
    arch = model.arch
    p = arch.patch_size
    h, w = size
    if h % p or w % p:
        raise ConvertError(f"--image-size {h}x{w} is not a multiple of the patch size {p}")
    old = (arch.image_height, arch.image_width)
    if (h, w) == old:
        return model, None
    t = arch.prefix_tokens
    gh, gw = old[0] // p, old[1] // p
    tensors = dict(model.tensors)
    new_arch = replace(arch, image_height=h, image_width=w)
    if "pos_embed" in tensors:
        pos = tensors["pos_embed"]
        grid = pos[t:].reshape(gh, gw, arch.dim)
        new_grid = resample_grid(grid, (h // p, w // p), mode).astype(np.float32)
        tensors["pos_embed"] = np.ascontiguousarray(np.concatenate([pos[:t], new_grid.reshape(-1, arch.dim)], axis=0))
        if not np.isfinite(tensors["pos_embed"]).all():
            raise ConvertError("the resampled position embedding is not finite (float32 overflow)")
    if model.rope is not None:
        # timm rebuilds its RoPE for the new grid (rope.update_feat_shape): so do we.
        tensors.update(rope.tensors(new_arch, model.rope, model.rope_freqs))
    if model.rel_pos is not None:
        tensors.update(relpos.tensors(new_arch, model.rel_pos, model.rel_pos_params))
    ordered = [(name, tensors[name]) for name, _ in model.tensors]
    resized = replace(model, arch=new_arch, tensors=ordered,
                      preprocess=scaled_preprocess(model.preprocess, old, (h, w)))
    note = (f"position embedding resampled from a {gh}x{gw} to a {h // p}x{w // p} patch grid "
            f"({mode}, prefix tokens kept) for {h}x{w} input")
    return resized, note
