"""What a family mapper hands on: canonical tensors plus the structure they imply."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np


@dataclass
class MappedCheckpoint:
    family: str                      # arch.family: timm, hf, google, vit-pytorch, ...
    tensors: Dict[str, np.ndarray]   # canonical name (FORMAT.md table) → float32 array
    origin: Dict[str, str]           # canonical name → checkpoint name(s), for error messages
    depth: int
    # Heads are only visible in the weights of Google checkpoints ([D, H, Dh] kernels);
    # elsewhere q/k/v are flat matrices and the split into heads is not recorded.
    heads: Optional[int] = None
    # timm `fc_norm`: LayerNorm on the pooled vector instead of a final norm on all tokens.
    fc_norm: bool = False
    # Whether prefix token 0 is a class token (timm class_token=False models have none, or
    # only register tokens).
    class_token: bool = True
    notes: List[str] = field(default_factory=list)  # printed on stderr as `convert.py: note: ...`
    # Version 2 (a described timm model): its features, and its RoPE's settings (timm_architecture.Rope)
    # and learned frequencies (mixed RoPE), from which assemble computes the tables for the file's grid.
    features: List[str] = field(default_factory=list)
    rope: Optional[object] = None
    rope_freqs: Optional[np.ndarray] = None
    # timm VisionTransformerRelPos: its bias settings (timm_architecture.RelPos) and MLP weights per block
    # (or "shared"), from which assemble computes the rel_pos_bias tables for the file's grid.
    rel_pos: Optional[object] = None
    rel_pos_params: Dict[object, Dict[str, np.ndarray]] = field(default_factory=dict)
    # The pooling the checkpoint's own model applies (arch.pool), where its layout fixes it
    # (None: the spec or timm's global_pool decides).
    pool: Optional[str] = None
    pool_proj_act: str = "none"      # after pool_proj, when the tensors have one: "none" | "tanh"
    embedding: Optional[str] = None  # what the embedding is, in the source library's terms
