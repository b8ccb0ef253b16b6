"""Relative position bias tables (`blocks.N.attn.rel_pos_bias`), computed as timm computes them.

timm's VisionTransformerRelPos (vision_transformer_relpos.py, layers/pos_embed_rel.py) adds to
each head's attention scores a bias that depends only on the two tokens' grid offset, made
by a small MLP over log-spaced offsets (RelPosMlp, Swin-V2 style; every registered name), or
read from a learned table (RelPosBias: refused, not read yet). The converter evaluates the MLP
once for the file's grid, in float64 (rounded once to float32): [heads, T+G, T+G], the prefix
tokens' rows and columns zero (the MLP's F.pad).

  offsets  (dy, dx) in [-(H-1), H-1] x [-(W-1), W-1]; 'cr': sign · ln(1 + |d|);
           'swin': d / (size - 1) · 8, then sign · log2(1 + |d|) / 3
  mlp      fc2(relu(fc1(offsets))) → one value per head ('swin': 16 · sigmoid of it)
  index    token pair (i, j) → offset (yi − yj + H − 1) · (2W − 1) + (xi − xj + W − 1)
"""

import numpy as np

from .errors import ConvertError


def position_index(grid):
    """timm gen_relative_position_index (no class token: RelPosMlp pads instead): [H·W, H·W]."""
    h, w = grid
    coords = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij")).reshape(2, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0).copy()
    rel[:, :, 0] += h - 1
    rel[:, :, 1] += w - 1
    rel[:, :, 0] *= 2 * w - 1
    return rel.sum(-1)


def log_offsets(grid, mode):
    """timm gen_relative_log_coords: [(2H−1)·(2W−1), 2] float64."""
    h, w = grid
    table = np.stack(np.meshgrid(np.arange(-(h - 1), h, dtype=np.float64), np.arange(-(w - 1), w, dtype=np.float64),
                                 indexing="ij"), axis=-1)
    if mode == "swin":
        table = table / np.array([max(h - 1, 1), max(w - 1, 1)]) * 8
        table = np.sign(table) * np.log2(1.0 + np.abs(table)) / np.log2(8)
    else:
        table = np.sign(table) * np.log(1.0 + np.abs(table))
    return table.reshape(-1, 2)


def mlp_bias(grid, prefix, params, mode):
    """RelPosMlp.get_bias for `params` {fc1.weight, fc1.bias, fc2.weight[, fc2.bias]}: [heads, T+G, T+G]."""
    w1, b1 = params["mlp.fc1.weight"].astype(np.float64), params["mlp.fc1.bias"].astype(np.float64)
    w2 = params["mlp.fc2.weight"].astype(np.float64)
    b2 = params["mlp.fc2.bias"].astype(np.float64) if "mlp.fc2.bias" in params else 0.0
    offsets = log_offsets(grid, mode)
    if w1.shape[1] != 2 or w2.shape[1] != w1.shape[0]:
        raise ConvertError(f"relative position MLP tensors of shapes {list(w1.shape)}, {list(w2.shape)}; expected "
                           f"fc1 [hidden, 2] and fc2 [heads, hidden]")
    values = np.maximum(offsets @ w1.T + b1, 0.0) @ w2.T + b2
    n = grid[0] * grid[1]
    bias = values[position_index(grid).reshape(-1)].reshape(n, n, -1).transpose(2, 0, 1)
    if mode == "swin":
        bias = 16.0 / (1.0 + np.exp(-bias))
    return np.pad(bias, ((0, 0), (prefix, 0), (prefix, 0))).astype(np.float32)


def tensors(arch, settings, params):
    """{blocks.N.attn.rel_pos_bias: table} for the file's grid; params: per block index, or under
    "shared" one set for every block (timm shared_rel_pos)."""
    grid = (arch.image_height // arch.patch_size, arch.image_width // arch.patch_size)
    out = {}
    for n in range(arch.depth):
        table = mlp_bias(grid, arch.prefix_tokens, params["shared" if settings.shared else n], settings.mode)
        if table.shape[0] != arch.heads:
            raise ConvertError(f"the relative position MLP gives {table.shape[0]} values per offset; the model has "
                               f"{arch.heads} heads")
        out[f"blocks.{n}.attn.rel_pos_bias"] = table
    return out
