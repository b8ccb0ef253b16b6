"""The model-file features of version 2 files (FORMAT.md, `arch.features`), and which of them
this onevit's engine runs.

A model whose architecture uses a feature the engine does not run is refused by the feature's
name, never written: a file the engine would read but compute wrongly must not exist. The lead
adds a feature to ENGINE_SUPPORTED when the engine runs it at parity.
"""

from .errors import ConvertError

# Every feature of the contract, in FORMAT.md's order, with what it is in timm's words.
FEATURES = {
    "rms_norm": "RMSNorm instead of LayerNorm (norm_layer=RmsNorm)",
    "embed_norm": "a norm on the embedded patches (embed_norm_layer)",
    "no_pos_embed": "no absolute position embedding",
    "qk_norm": "query/key normalisation (qk_norm)",
    "rope": "rotary position embeddings (RoPE)",
    "attn_norm": "a norm inside attention (scale_attn_norm / scale_attn_inner)",
    "swiglu": "a SwiGLU MLP",
    "mlp_norm": "a norm inside the MLP (scale_mlp_norm / scale_mlp)",
    "post_norm": "residual post-norm blocks (ResPostBlock / use_post_norm)",
    "parallel": "parallel attention and MLP branches (ParallelScalingBlock)",
    "rel_pos_bias": "a relative position bias",
    # Proposed in notes/format-v2-questions.md (PE core): keys arch.pool_heads, arch.pool_mlp_dim, arch.pool_prefix.
    "attn_pool_shape": "an attention pool with heads and MLP of its own, over every token (Eva's attn_pool)",
}

# Every feature: tests/modern_test.py checks each against timm at parity (tests/fixtures/modern).
ENGINE_SUPPORTED = frozenset(FEATURES)


def check_runnable(features, refusals, what, supported=None):
    """ConvertError naming every layer of `what` that cannot be written: the features the engine
    does not run (not in `supported`, by default ENGINE_SUPPORTED) and the layers no model-file
    feature expresses (`refusals`)."""
    supported = ENGINE_SUPPORTED if supported is None else supported
    reasons = [f"{f} ({FEATURES[f]}), which this onevit's engine cannot run yet"
               for f in features if f not in supported]
    reasons += [f"{r}, which the .ovit format cannot express" for r in refusals]
    if reasons:
        raise ConvertError(f"{what} uses " + "; ".join(reasons))
