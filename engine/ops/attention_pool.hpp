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
// weighted sum: plain loops, cheap next to the kv matmul over every token.
#pragma once

#include <vector>

#include "runtime/aligned_buffer.hpp"
#include "runtime/executor.hpp"
#include "ops/layer_norm.hpp"
#include "ops/linear.hpp"

namespace onevit {

struct AttentionPoolWeights {
    const float* query;  // [dim], read in place from the mapped file
    LinearWeights kv;    // [2·dim, dim]: rows k, then v, each head-major
    LinearWeights proj;  // [dim, dim]
    const float* norm_scale;  // [dim]
    const float* norm_shift;  // [dim]
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
    float eps = 0.f;
};

class AttentionPoolSteps {
public:
    // tokens: (batch·tokens) × dim; pooled: batch × dim.
    AttentionPoolSteps(const AttentionPoolWeights& weights, const dnnl::engine& engine, int threads,
                       const AttentionPoolShape& shape, const float* tokens, float* pooled);

    // Inside Executor::run; scratchpads: one per arena slot.
    void run(Executor& executor, std::vector<dnnl::memory>& scratchpads);
    std::size_t scratchpad_bytes() const;

private:
    void attend(int image, int head);

    const float* query_;
    AttentionPoolShape shape_;
    AlignedBuffer kv_;        // (batch·tokens) × 2·dim
    AlignedBuffer scores_;    // (batch·heads) × patch tokens: each task's own row
    AlignedBuffer attended_;  // batch × dim
    AlignedBuffer normed_;    // batch × dim
    AlignedBuffer hidden_;    // batch × mlp
    LinearSteps kv_steps_;
    LinearSteps proj_;
    LayerNormSteps norm_;
    LinearSteps fc1_;
    LinearSteps fc2_;
};

}  // namespace onevit
