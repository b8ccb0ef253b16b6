"""A small random ViT without a classifier (num_classes 0), as a .ovit: what the
commands that need a classifier must refuse cleanly and the others must serve.

    write_headless_vit(path, converter)   # converter: weights/convert.py
"""

from __future__ import annotations

import os
import sys
import tempfile

import safetensors_io
from harness import run_tool
from random_vit import random_vit_state

DIM, DEPTH, HEADS, MLP = 64, 2, 2, 128
GRID = 4  # 4 × 4 patches of 16: a 64 × 64 input


def write_headless_vit(path: str, converter: str) -> None:
    """timm-named random weights with the head.* tensors dropped, converted to `path`."""
    state = random_vit_state(DIM, DEPTH, mlp_dim=MLP, num_classes=1, seed=2511, grid_tokens=GRID * GRID)
    for name in [n for n in state if n.startswith("head.")]:
        del state[name]
    with tempfile.TemporaryDirectory(prefix="onevit_headless_") as tmp:
        checkpoint = os.path.join(tmp, "headless.safetensors")
        safetensors_io.save_file(state, checkpoint, metadata={"format": "pt"})
        run_tool([sys.executable, converter, checkpoint, "--heads", str(HEADS), "-o", path], "convert.py")
