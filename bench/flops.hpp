// Floating-point operations of one ViT forward pass, for the bench's GFLOP/s counter.
// Only the matrix products are counted (2 FLOPs per multiply-add), as papers and
// timm's "GMACs" tables do: LayerNorm, softmax, GELU and the residual adds are
// well under 1% of the total. ViT-B/16 at 224: 17.6 GMACs = 35.1 GFLOP per image.
#pragma once

#include "onevit/model_info.hpp"

namespace onevit::bench {

inline double forward_flops_per_image(const Architecture& a) {
    const double n = a.tokens();        // prefix + patch tokens
    const double d = a.dim;
    const double inner = a.inner_dim();  // heads × head_dim
    const double m = a.mlp_dim;
    const double patch_embed = static_cast<double>(a.patch_tokens()) * d * a.channels * a.patch_size * a.patch_size;
    const double qkv = n * d * 3 * inner;
    const double scores = n * n * inner;  // q kᵀ, all heads
    const double mix = n * n * inner;     // softmax(…) v, all heads
    const double proj = a.attn_proj ? n * inner * d : 0;
    const double mlp = 2 * n * d * m;  // fc1 and fc2
    const double head = (a.head == Head::distilled ? 2 : 1) * d * a.num_classes;
    const double macs = patch_embed + a.depth * (qkv + scores + mix + proj + mlp) + head;
    return 2 * macs;
}

}  // namespace onevit::bench
