"""What the user's --arch or --config says about the model, before it meets the weights.

Fields left None are not stated by that source and are taken from the checkpoint;
every stated field is cross-checked against the tensors (assemble.py). Its sizes, image_height
to mlp_dim, are Geometry's.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .geometry import Geometry
from .preprocess import Preprocessing


@dataclass(frozen=True)
class ModelSpec(Geometry):
    source: str                 # how messages name it: "--arch vit_base_patch16_224", "config.json"
    norm_eps: float
    gelu: str                   # "erf" | "tanh"
    preprocess: Preprocessing
    # The --arch table's timm recipe, not one the user gave: Google-family weights
    # then get Google's own eval recipe instead (see assemble.py).
    preprocess_is_default: bool = False
    num_classes: Optional[int] = None
    prefix_tokens: Optional[int] = None
    qkv_bias: Optional[bool] = None
    global_pool: Optional[str] = None   # timm's global_pool ("token", "avg", ...), if stated
    pool_heads: int = 0                 # the attention pool's own heads (attn_pool_shape), if any,
    pool_prefix: bool = False           # and whether it attends over the prefix tokens
    labels: Optional[List[str]] = None
    # Set by the constructor configs (constructor_config.py), whose constructors fix these:
    family: Optional[str] = None        # the arch.family the config's arguments belong to
    pool: Optional[str] = None          # arch.pool: "token" | "mean"
    attn_scale: Optional[float] = None  # None: head_dim ** -0.5
    attn_proj: Optional[bool] = None    # whether attention has an output projection
    head_hidden: Optional[int] = None   # the MLP head's hidden width (mnist-vit)
    # Other stated sizes that only the family's mapper can check (flax-seed: embed_dim).
    stated: Dict[str, int] = field(default_factory=dict)
