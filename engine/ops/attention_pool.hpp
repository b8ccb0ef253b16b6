// Attention pooling (SigLIP's "MAP" head, timm's AttentionPoolLatent with one
// latent): a learned query attends over each image's patch tokens, then an
// output projection and a residual MLP:
//
//   a = concat_h softmax(scale · q_h k_hᵀ) v_h     k, v = the patch tokens · Wkvᵀ + b
//   p = a Wprojᵀ + b
//   p = p + fc2(gelu(fc1(LN(p))))
//
// The query is a constant (the latent through its projection, folded at
// conversion), so each (image, head) is one dot product per token and one
// weighted sum: plain loops (the Attend op), cheap next to the kv matmul over
// every token. The rest are linear and norm ops, run one after another.
#pragma once

#include <memory>
#include <vector>

#include "ops/linear.hpp"
#include "ops/norm.hpp"
#include "runtime/aligned_buffer.hpp"

namespace onevit {

struct AttentionPoolWeights {
    const float* query;  // [dim], read in place from the mapped file
    LinearWeights kv;    // [2·dim, dim]: rows k, then v, each head-major
    LinearWeights proj;  // [dim, dim]
    NormParams norm;     // [dim]
    LinearWeights fc1;   // [mlp, dim], GELU fused
    LinearWeights fc2;   // [dim, mlp], residual add fused
};

struct AttentionPoolShape {
    int batch = 0;
    int tokens = 0;         // per image, prefix tokens included
    int prefix_tokens = 0;  // not attended to (timm pools the patch tokens only)
    int heads = 0;
    int dim = 0;
    int mlp_dim = 0;
    float scale = 0.f;
};

class AttentionPool {
public:
    // tokens: (batch·tokens) × dim; pooled: batch × dim.
    AttentionPool(const AttentionPoolWeights& weights, const dnnl::engine& engine, int threads,
                  const AttentionPoolShape& shape, const float* tokens, float* pooled);
    // Its ops, in order, each a phase of its own.
    std::vector<Op*> ops() const;

private:
    AlignedBuffer kv_;        // (batch·tokens) × 2·dim
    AlignedBuffer attended_;  // batch × dim
    AlignedBuffer normed_;    // batch × dim
    AlignedBuffer hidden_;    // batch × mlp
    std::unique_ptr<Op> kv_op_, attend_, proj_, norm_, fc1_, fc2_;
};

}  // namespace onevit
