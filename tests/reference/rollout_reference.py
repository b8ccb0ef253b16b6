"""Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in
Transformers", section 3), written from the paper as whole-matrix products:

    Â_l = normalise_rows(mean over heads of A_l + I)      (the residual path)
    R   = Â_L · Â_{L-1} · … · Â_1
    map = R[class token, patch tokens], reshaped to the patch grid, / its sum

The class token is token 0, also in DeiT distilled models (whose token 1, the
distillation token, is a prefix token like it and so not part of the map).
"""

from __future__ import annotations

from typing import Tuple

import torch


def attention_rollout(attention: torch.Tensor, prefix_tokens: int, grid: Tuple[int, int]) -> torch.Tensor:
    """attention: one image's [depth, heads, T, T] (float64) -> the [grid_h, grid_w] map summing to 1."""
    tokens = attention.shape[-1]
    eye = torch.eye(tokens, dtype=attention.dtype)
    joint = eye
    for block in attention:                      # first block to last
        mixed = block.mean(dim=0) + eye
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        joint = mixed @ joint
    cls_to_patches = joint[0, prefix_tokens:]
    return (cls_to_patches / cls_to_patches.sum()).reshape(grid)
