#include "ops/attention_pool.hpp"

#include <algorithm>
#include <cmath>

namespace onevit {

namespace {

std::size_t elements(int rows, int width) { return std::size_t(rows) * std::size_t(width); }

// attended[image, head columns] = softmax over the patch tokens of scale · q·k, weighting v.
class Attend : public Op {
public:
    Attend(const AttentionPoolShape& shape, const float* query, const float* kv, float* attended)
        : Op("attention pool"), shape_(shape), query_(query), kv_(kv), attended_(attended) {
        workspace_bytes_ = sizeof(float) * (shape_.tokens - shape_.prefix_tokens);
    }
    int tasks() const override { return shape_.batch * shape_.heads; }

    void run(int task, TaskContext& context) override {
        const int image = task / shape_.heads, head = task % shape_.heads;
        const int D = shape_.dim, head_dim = D / shape_.heads, first = shape_.prefix_tokens;
        const int count = shape_.tokens - first;
        const float* q = query_ + head * head_dim;
        const float* rows = kv_ + elements(image * shape_.tokens + first, 2 * D);
        auto* weights = reinterpret_cast<float*>(context.workspace);
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
        float* out = attended_ + elements(image, D) + head * head_dim;
        std::fill(out, out + head_dim, 0.f);
        for (int t = 0; t < count; ++t) {
            const float* v = rows + elements(t, 2 * D) + D + head * head_dim;
            const float p = weights[t] / sum;
            for (int i = 0; i < head_dim; ++i) out[i] += p * v[i];
        }
    }

private:
    AttentionPoolShape shape_;
    const float* query_;
    const float* kv_;
    float* attended_;
};

}  // namespace

AttentionPool::AttentionPool(const AttentionPoolWeights& w, const dnnl::engine& engine, int threads,
                             const AttentionPoolShape& s, const float* tokens, float* pooled)
    : kv_(elements(s.batch * s.tokens, 2 * s.dim)),
      attended_(elements(s.batch, s.dim)),
      normed_(elements(s.batch, s.dim)),
      hidden_(elements(s.batch, s.mlp_dim)),
      // k and v of the prefix tokens are computed too (the rows are dense) and never read.
      kv_op_(make_linear("attn_pool.kv", w.kv, engine, s.batch * s.tokens, tokens, kv_.data())),
      attend_(std::make_unique<Attend>(s, w.query, kv_.data(), attended_.data())),
      proj_(make_linear("attn_pool.proj", w.proj, engine, s.batch, attended_.data(), pooled)),
      norm_(make_norm("attn_pool.norm", engine, threads, s.batch, w.norm, pooled, normed_.data())),
      fc1_(make_linear("attn_pool.fc1", w.fc1, engine, s.batch, normed_.data(), hidden_.data())),
      fc2_(make_linear("attn_pool.fc2", w.fc2, engine, s.batch, hidden_.data(), pooled)) {}

std::vector<Op*> AttentionPool::ops() const {
    return {kv_op_.get(), attend_.get(), proj_.get(), norm_.get(), fc1_.get(), fc2_.get()};
}

}  // namespace onevit
