"""Fixed-seed random ViT weights with realistic scales, timm-named.

Used by tests/parity_test.py and tests/families_test.py (against the reference)
and by bench/make_random_models.py (the benchmark's model files).
"""

from __future__ import annotations

import torch


def random_vit_state(dim: int, depth: int, *, mlp_dim: int, num_classes: int, seed: int,
                     channels: int = 3, patch: int = 16, grid_tokens: int = 196,
                     prefix: int = 1) -> dict:
    """timm-named float32 weights with a fixed seed.

    Scales (fan-in based) chosen so that a wrong detail shows: q/k weights
    1.75/sqrt(D) give attention logits of std ~3 (peaked, not uniform), fc1
    2/sqrt(D) drives the GELU well into its curved range, pos/cls tokens are
    as large as the patch tokens, LayerNorm weights are 1 ± 0.1 with biases,
    and the head gives logits of std ~3, max ~10.
    """
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return (torch.randn(shape, generator=g, dtype=torch.float32) * std).contiguous()

    def trunc_normal(shape, std):
        return normal(shape, std).clamp_(-2 * std, 2 * std)

    d, m = dim, mlp_dim
    sd = {
        "patch_embed.proj.weight": normal((d, channels, patch, patch), (channels * patch * patch) ** -0.5),
        "patch_embed.proj.bias": normal((d,), 0.02),
        "cls_token": trunc_normal((1, 1, d), 0.5),
        "pos_embed": trunc_normal((1, prefix + grid_tokens, d), 0.5),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        sd[p + "norm1.weight"] = 1 + normal((d,), 0.1)
        sd[p + "norm1.bias"] = normal((d,), 0.05)
        sd[p + "attn.qkv.weight"] = normal((3 * d, d), 1.75 * d ** -0.5)
        sd[p + "attn.qkv.bias"] = normal((3 * d,), 0.05)
        sd[p + "attn.proj.weight"] = normal((d, d), d ** -0.5)
        sd[p + "attn.proj.bias"] = normal((d,), 0.02)
        sd[p + "norm2.weight"] = 1 + normal((d,), 0.1)
        sd[p + "norm2.bias"] = normal((d,), 0.05)
        sd[p + "mlp.fc1.weight"] = normal((m, d), 2.0 * d ** -0.5)
        sd[p + "mlp.fc1.bias"] = normal((m,), 0.05)
        sd[p + "mlp.fc2.weight"] = normal((d, m), m ** -0.5)
        sd[p + "mlp.fc2.bias"] = normal((d,), 0.02)
    sd["norm.weight"] = 1 + normal((d,), 0.1)
    sd["norm.bias"] = normal((d,), 0.05)
    sd["head.weight"] = normal((num_classes, d), 3.0 * d ** -0.5)
    sd["head.bias"] = normal((num_classes,), 0.1)
    return sd
