#include "ops/attention_pool.hpp"

#include <algorithm>
#include <cmath>

namespace onevit {

namespace {

std::size_t elements(int rows, int width) { return std::size_t(rows) * std::size_t(width); }

void run_parallel(Executor& executor, StepList& op, std::vector<dnnl::memory>& scratchpads) {
    std::vector<Step>& steps = op.steps();
    executor.parallel(static_cast<int>(steps.size()),
                      [&](int i) { steps[i].execute(executor.stream(), scratchpads[Executor::slot()]); });
}

}  // namespace

AttentionPoolSteps::AttentionPoolSteps(const AttentionPoolWeights& w, const dnnl::engine& engine, int threads,
                                       const AttentionPoolShape& shape, const float* tokens, float* pooled)
    : query_(w.query),
      shape_(shape),
      kv_(elements(shape.batch * shape.tokens, 2 * shape.dim)),
      scores_(elements(shape.batch * shape.heads, shape.tokens - shape.prefix_tokens)),
      attended_(elements(shape.batch, shape.dim)),
      normed_(elements(shape.batch, shape.dim)),
      hidden_(elements(shape.batch, shape.mlp_dim)),
      // k and v of the prefix tokens are computed too (the rows are dense) and never read.
      kv_steps_(w.kv, engine, shape.batch * shape.tokens, tokens, kv_.data()),
      proj_(w.proj, engine, shape.batch, attended_.data(), pooled),
      norm_(engine, threads, shape.batch, shape.dim, shape.eps, w.norm_scale, w.norm_shift, pooled, normed_.data()),
      fc1_(w.fc1, engine, shape.batch, normed_.data(), hidden_.data()),
      fc2_(w.fc2, engine, shape.batch, hidden_.data(), pooled) {}

std::size_t AttentionPoolSteps::scratchpad_bytes() const {
    return std::max({kv_steps_.scratchpad_bytes(), proj_.scratchpad_bytes(), norm_.scratchpad_bytes(),
                     fc1_.scratchpad_bytes(), fc2_.scratchpad_bytes()});
}

void AttentionPoolSteps::run(Executor& executor, std::vector<dnnl::memory>& scratchpads) {
    run_parallel(executor, kv_steps_, scratchpads);
    executor.parallel(shape_.batch * shape_.heads, [&](int task) { attend(task / shape_.heads, task % shape_.heads); });
    run_parallel(executor, proj_, scratchpads);  // pooled = attended Wprojᵀ + b
    run_parallel(executor, norm_, scratchpads);
    run_parallel(executor, fc1_, scratchpads);
    run_parallel(executor, fc2_, scratchpads);  // pooled += fc2(gelu(fc1(LN(pooled))))
}

// attended[image, head columns] = softmax over the patch tokens of scale · q·k, weighting v.
void AttentionPoolSteps::attend(int image, int head) {
    const int D = shape_.dim, head_dim = D / shape_.heads, first = shape_.prefix_tokens;
    const int count = shape_.tokens - first;
    const float* q = query_ + head * head_dim;
    const float* rows = kv_.data() + elements(image * shape_.tokens + first, 2 * D);
    float* weights = scores_.data() + elements(image * shape_.heads + head, count);
    float max_score = -INFINITY;
    for (int t = 0; t < count; ++t) {
        const float* k = rows + elements(t, 2 * D) + head * head_dim;
        float dot = 0.f;
        for (int i = 0; i < head_dim; ++i) dot += q[i] * k[i];
        weights[t] = shape_.scale * dot;
        max_score = std::max(max_score, weights[t]);
    }
    float sum = 0.f;
    for (int t = 0; t < count; ++t) sum += weights[t] = std::exp(weights[t] - max_score);
    float* out = attended_.data() + elements(image, D) + head * head_dim;
    std::fill(out, out + head_dim, 0.f);
    for (int t = 0; t < count; ++t) {
        const float* v = rows + elements(t, 2 * D) + D + head * head_dim;
        const float p = weights[t] / sum;
        for (int i = 0; i < head_dim; ++i) out[i] += p * v[i];
    }
}

}  // namespace onevit
