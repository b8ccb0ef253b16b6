// The small row ops around the blocks: assembling the token rows, adding the
// attention output to the residual where there is no projection, and pooling
// each image's tokens into one vector.
#pragma once

#include <string>

#include "onevit/model_info.hpp"
#include "ops/op.hpp"

namespace onevit {

// x = concat(prefix tokens, patch embeddings) + pos_embed (if any), per image; in row
// tiles as the norms split rows, so it chains with the first norm.
class AssembleTokens : public Op {
public:
    // patches: (batch · patches) × dim; x: (batch · tokens) × dim.
    AssembleTokens(const Architecture& arch, int threads, int batch, const float* prefix_tokens, const float* pos_embed,
                   const float* patches, float* x);
    void run(int task, TaskContext& context) override;

private:
    int dim_, tokens_, prefix_, patches_per_image_;
    const float* prefix_tokens_;
    const float* pos_embed_;
    const float* patches_;
    float* x_;
};

// x += y, row by row (attention without an output projection).
class AddRows : public Op {
public:
    AddRows(int threads, int rows, int dim, const float* y, float* x);
    void run(int task, TaskContext& context) override;

private:
    int dim_;
    const float* y_;
    float* x_;
};

// pooled[b] = token 0 (and, distilled, pooled[batch + b] = token 1), or the
// mean over all tokens, or over the patch tokens only, or token 0 followed by
// the mean over the patch tokens (rows of 2·dim).
class PoolTokens : public Op {
public:
    PoolTokens(const Architecture& arch, int batch, const float* tokens, float* pooled, bool distilled);
    int tasks() const override { return batch_; }
    void run(int image, TaskContext& context) override;

private:
    Pool pool_;
    int batch_, dim_, tokens_, prefix_;
    bool distilled_;
    const float* tokens_in_;
    float* pooled_;
};

}  // namespace onevit
