"""The final architecture written to a model file: one field per `arch.*` key of FORMAT.md
(its sizes, image_height to mlp_dim, are Geometry's)."""

from dataclasses import dataclass

from .geometry import Geometry


@dataclass(frozen=True)
class Architecture(Geometry):
    family: str
    num_classes: int
    prefix_tokens: int
    norm_eps: float
    gelu: str           # "erf" | "tanh" | "quick"
    attn_scale: float
    qkv_bias: bool
    attn_proj: bool
    final_norm: bool
    pool: str           # "token" | "mean" | "mean_patches" | "map" | "token_and_mean_patches"
    head_norm: bool
    head: str           # "linear" | "distilled" | "mlp" | "none"
    # Optional keys (FORMAT.md): written only when they differ from their default.
    patch_norm: bool = False    # dual patch norm: patch_embed.norm_in / norm_out
    head_hidden: int = 0        # width of head_hidden when head is "mlp"
    class_token: bool = True    # prefix token 0 is a class token
    norm_pre: bool = False      # LayerNorm norm_pre on the tokens before the first block
    pool_proj: int = 0          # width of the linear layer on the pooled vector (0: none)
    pool_proj_act: str = "none"  # after it: "none" (CLIP's projection) | "tanh" (pooler, pre-logits)
    # Version 2 (FORMAT.md "Features"): arch.features, and the keys of the features named.
    features: tuple = ()        # feature names, in features.FEATURES order
    rope_layout: str = ""       # rope: "interleaved" | "half"
    rope_per_block: bool = False  # rope: a table per block and head (mixed RoPE)
    pool_heads: int = 0         # attn_pool_shape: the attention pool's heads ...
    pool_mlp_dim: int = 0       # ... its MLP's hidden width ...
    pool_prefix: bool = False   # ... and whether it attends over the prefix tokens too

    def has(self, feature):
        return feature in self.features

    @property
    def pooled_dim(self):
        """token_and_mean_patches: concat(token 0, mean of the patch tokens)."""
        return 2 * self.dim if self.pool == "token_and_mean_patches" else self.dim

    @property
    def embed_dim(self):
        """Width of the embedding: pool_proj's output, else the pooled vector."""
        return self.pool_proj or self.pooled_dim
