// What the op tests share: random data, 64-byte aligned tensors, a tolerance
// check against a double-precision naive loop, building ops inside the arena,
// and a fixture that runs an op on every thread count.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "runtime/executor.hpp"
#include "format/model_file.hpp"
#include "ops/attention.hpp"
#include "ops/op.hpp"
#include "ops/patch_grid.hpp"
#include "ops/schedule.hpp"
#include "runtime/thread_memory.hpp"
#include "runtime/weight_memory.hpp"

namespace onevit {

inline std::vector<float> random_vector(std::size_t n, unsigned seed, float scale = 1.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// 64-byte aligned copy, as model files store tensors.
struct Tensor {
    std::vector<float> storage;
    TensorView view;
    Tensor(std::vector<std::int64_t> dims, unsigned seed, float scale = 1.f) {
        view.dims = std::move(dims);
        storage = random_vector(view.elements() + 16, seed, scale);
        float* p = storage.data();
        while (reinterpret_cast<std::uintptr_t>(p) % 64) ++p;
        view.data = p;
    }
};

inline void expect_close(const std::vector<float>& actual, const std::vector<double>& expected, double rel) {
    ASSERT_EQ(actual.size(), expected.size());
    double max_ref = 0, max_err = 0;
    for (std::size_t i = 0; i < actual.size(); ++i) {
        max_ref = std::max(max_ref, std::abs(expected[i]));
        max_err = std::max(max_err, std::abs(actual[i] - expected[i]));
    }
    EXPECT_LE(max_err, rel * std::max(1.0, max_ref)) << "max |ref| " << max_ref;
}

inline double gelu_erf(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
inline double gelu_tanh(double x) {
    return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
inline double gelu_quick(double x) { return x / (1 + std::exp(-1.702 * x)); }  // CLIP's QuickGELU, x·sigmoid(1.702x)

// softmax(scale · q kᵀ) v per image and head, in double, from qkv rows [q | k | v].
// probabilities, if given, gets the softmax: image b, head h, query row r at
// (b·heads + h)·tokens + r, times tokens.
inline std::vector<double> naive_attention(const std::vector<float>& qkv, const AttentionShape& s,
                                           std::vector<double>* probabilities = nullptr) {
    const int I = s.inner(), T = s.tokens;
    std::vector<double> expected(std::size_t(s.batch) * s.tokens * I);
    if (probabilities) probabilities->assign(std::size_t(s.batch) * s.heads * T * T, 0.0);
    for (int b = 0; b < s.batch; ++b)
        for (int h = 0; h < s.heads; ++h)
            for (int i = 0; i < s.tokens; ++i) {
                auto at = [&](int token, int part, int d) {
                    return double(qkv[(b * s.tokens + token) * 3 * I + part * I + h * s.head_dim + d]);
                };
                std::vector<double> p(s.tokens);
                double max = -1e300, sum = 0;
                for (int j = 0; j < s.tokens; ++j) {
                    double dot = 0;
                    for (int d = 0; d < s.head_dim; ++d) dot += at(i, 0, d) * at(j, 1, d);
                    p[j] = s.scale * dot;
                    max = std::max(max, p[j]);
                }
                for (double& x : p) sum += x = std::exp(x - max);
                if (probabilities)
                    for (int j = 0; j < T; ++j)
                        (*probabilities)[((std::size_t(b) * s.heads + h) * T + i) * T + j] = p[j] / sum;
                for (int d = 0; d < s.head_dim; ++d) {
                    double acc = 0;
                    for (int j = 0; j < s.tokens; ++j) acc += p[j] / sum * at(j, 2, d);
                    expected[(b * s.tokens + i) * I + h * s.head_dim + d] = acc;
                }
            }
    return expected;
}

// LayerNorm of each row of src (rows × dim), in double.
inline std::vector<double> naive_layer_norm(const std::vector<float>& src, int rows, int dim, float eps,
                                            const float* scale, const float* shift) {
    std::vector<double> expected;
    for (int r = 0; r < rows; ++r) {
        double mean = 0, var = 0;
        for (int i = 0; i < dim; ++i) mean += src[r * dim + i];
        mean /= dim;
        for (int i = 0; i < dim; ++i) var += (src[r * dim + i] - mean) * (src[r * dim + i] - mean);
        var /= dim;
        for (int i = 0; i < dim; ++i)
            expected.push_back((src[r * dim + i] - mean) / std::sqrt(var + eps) * scale[i] + shift[i]);
    }
    return expected;
}

// The images' patches, one row of C·P·P values each, in (c, y, x) order.
inline std::vector<float> naive_patch_rows(const std::vector<float>& images, const PatchGrid& g, int batch) {
    std::vector<float> rows;
    for (int b = 0; b < batch; ++b)
        for (int gy = 0; gy < g.grid_height(); ++gy)
            for (int gx = 0; gx < g.grid_width(); ++gx)
                for (int c = 0; c < g.channels; ++c)
                    for (int y = 0; y < g.patch; ++y)
                        for (int x = 0; x < g.patch; ++x)
                            rows.push_back(
                                images[((std::size_t(b) * g.channels + c) * g.image_height + gy * g.patch + y) *
                                           g.image_width +
                                       gx * g.patch + x]);
    return rows;
}

// Ops are built inside the arena, as the engine builds them (Executor::require_inside_run).
template <class Make>
auto inside(Executor& ex, Make&& make) -> decltype(make()) {
    std::optional<decltype(make())> made;
    ex.run([&] { made.emplace(make()); });
    return std::move(*made);
}

class OpTest : public ::testing::TestWithParam<int> {
public:
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    WeightMemory weight_memory;
    // Runs op once on ex's threads, each task with its thread's own memory, as a Forward does.
    void run(Executor& ex, Op& op) {
        ThreadMemory memory(engine, ex.threads(), op.scratchpad_bytes(), op.workspace_bytes());
        op.bind(memory);
        ex.run([&] { Schedule(ex, memory).run({&op}); });
    }
};

}  // namespace onevit
