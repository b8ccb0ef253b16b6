#include "ops/tokens.hpp"

#include <algorithm>
#include <cstring>

#include "ops/schedule.hpp"

namespace onevit {

AssembleTokens::AssembleTokens(const Architecture& a, int threads, int batch, const float* prefix_tokens,
                               const float* pos_embed, const float* patches, float* x)
    : Op("tokens"),
      dim_(a.dim),
      tokens_(a.tokens()),
      prefix_(a.prefix_tokens),
      patches_per_image_(a.patch_tokens()),
      prefix_tokens_(prefix_tokens),
      pos_embed_(pos_embed),
      patches_(patches),
      x_(x) {
    row_tiles_ = chain_tiles(batch * tokens_, threads);
}

void AssembleTokens::run(int task, TaskContext&) {
    const Range rows = row_tiles_[task];
    const std::size_t D = dim_;
    for (int row = rows.begin; row < rows.begin + rows.size; ++row) {
        const int b = row / tokens_, t = row % tokens_;
        float* dst = x_ + row * D;
        const float* src =
            t < prefix_ ? prefix_tokens_ + t * D : patches_ + (std::size_t(b) * patches_per_image_ + (t - prefix_)) * D;
        if (!pos_embed_) {
            std::memcpy(dst, src, sizeof(float) * D);
            continue;
        }
        const float* pos = pos_embed_ + t * D;
        for (std::size_t i = 0; i < D; ++i) dst[i] = src[i] + pos[i];
    }
}

AddRows::AddRows(int threads, int rows, int dim, const float* y, float* x)
    : Op("residual add"), dim_(dim), y_(y), x_(x) {
    row_tiles_ = chain_tiles(rows, threads);
}

void AddRows::run(int task, TaskContext&) {
    const Range rows = row_tiles_[task];
    const std::size_t begin = std::size_t(rows.begin) * dim_, end = begin + std::size_t(rows.size) * dim_;
    for (std::size_t i = begin; i < end; ++i) x_[i] += y_[i];
}

PoolTokens::PoolTokens(const Architecture& a, int batch, const float* tokens, float* pooled, bool distilled)
    : Op("pool"),
      pool_(a.pool),
      batch_(batch),
      dim_(a.dim),
      tokens_(a.tokens()),
      prefix_(a.prefix_tokens),
      distilled_(distilled),
      tokens_in_(tokens),
      pooled_(pooled) {}

void PoolTokens::run(int b, TaskContext&) {
    const std::size_t D = dim_, T = tokens_, width = pool_ == Pool::token_and_mean_patches ? 2 * D : D;
    const float* image = tokens_in_ + b * T * D;
    float* dst = pooled_ + b * width;
    if (pool_ == Pool::token_and_mean_patches) {
        std::memcpy(dst, image, sizeof(float) * D);
        dst += D;
    }
    if (pool_ == Pool::token) {
        std::memcpy(dst, image, sizeof(float) * D);
    } else {
        const std::size_t first = pool_ == Pool::mean ? 0 : prefix_;
        std::fill(dst, dst + D, 0.f);
        for (std::size_t t = first; t < T; ++t)
            for (std::size_t i = 0; i < D; ++i) dst[i] += image[t * D + i];
        for (std::size_t i = 0; i < D; ++i) dst[i] /= float(T - first);
    }
    if (distilled_) std::memcpy(pooled_ + (batch_ + b) * D, image + D, sizeof(float) * D);
}

}  // namespace onevit
