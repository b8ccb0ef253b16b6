// The ops of the 2025-26 ViTs (weights/FORMAT.md, "Features") against naive
// double loops written here: RMSNorm, a norm added into the residual (post-norm),
// the MLP hidden (SwiGLU gate, sub-LN norm), and attention with q/k norms,
// rotary positions in both pair layouts and a per-head score bias.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <vector>

#include "op_test_support.hpp"
#include "ops/attention.hpp"
#include "ops/mlp_hidden.hpp"
#include "ops/norm.hpp"
#include "ops/quantize.hpp"
#include "ops/rope.hpp"

namespace onevit {
namespace {

class ModernOps : public OpTest {
protected:
    void check_attention(const AttentionShape& s);
};

double silu(double x) { return x / (1 + std::exp(-x)); }

// norm of one row in double: LayerNorm or RMSNorm.
std::vector<double> naive_norm(Norm kind, const float* x, int n, float eps, const float* scale, const float* shift) {
    double mean = 0, squares = 0;
    if (kind == Norm::layer)
        for (int i = 0; i < n; ++i) mean += x[i] / double(n);
    for (int i = 0; i < n; ++i) squares += (x[i] - mean) * (x[i] - mean) / n;
    std::vector<double> y(n);
    for (int i = 0; i < n; ++i)
        y[i] = (x[i] - mean) / std::sqrt(squares + eps) * scale[i] + (kind == Norm::layer ? shift[i] : 0.0);
    return y;
}

// x'[j] = x[j] cos[j] + r(x)[j] sin[j], r pairing (2i, 2i+1) or (i, i+n/2).
std::vector<double> naive_rope(Rope layout, const std::vector<double>& x, const float* cos, const float* sin) {
    const int n = static_cast<int>(x.size());
    std::vector<double> y(n);
    for (int j = 0; j < n; ++j) {
        double partner;
        if (layout == Rope::interleaved)
            partner = j % 2 == 0 ? -x[j + 1] : x[j - 1];
        else
            partner = j < n / 2 ? -x[j + n / 2] : x[j - n / 2];
        y[j] = x[j] * cos[j] + partner * sin[j];
    }
    return y;
}

TEST_P(ModernOps, RmsNormMatchesNaive) {
    Executor ex(engine, GetParam());
    const int rows = 19, dim = 40;
    Tensor scale({dim}, 21);
    std::vector<float> src = random_vector(rows * dim, 22, 2.f), dst(src.size());
    for (float& v : src) v += 3.f;  // RMSNorm does not centre: a mean far from 0 shows it
    auto op = inside(ex, [&] {
        return make_norm("rms", engine, ex.threads(), rows, {Norm::rms, dim, 1e-5f, scale.view.data, nullptr},
                         src.data(), dst.data());
    });
    run(ex, *op);
    std::vector<double> expected;
    for (int r = 0; r < rows; ++r)
        for (double v : naive_norm(Norm::rms, &src[r * dim], dim, 1e-5f, scale.view.data, nullptr))
            expected.push_back(v);
    expect_close(dst, expected, 1e-5);
}

TEST_P(ModernOps, NormAccumulatesIntoTheResidual) {
    Executor ex(engine, GetParam());
    const int rows = 13, dim = 24;
    Tensor scale({dim}, 23), shift({dim}, 24);
    const std::vector<float> branch = random_vector(rows * dim, 25, 4.f);
    std::vector<float> x = random_vector(rows * dim, 26);
    const std::vector<float> x0 = x;
    auto op = inside(ex, [&] {
        return make_norm("post", engine, ex.threads(), rows,
                         {Norm::layer, dim, 1e-6f, scale.view.data, shift.view.data}, branch.data(), x.data(), true);
    });
    run(ex, *op);
    std::vector<double> expected;
    for (int r = 0; r < rows; ++r) {
        const auto n = naive_norm(Norm::layer, &branch[r * dim], dim, 1e-6f, scale.view.data, shift.view.data);
        for (int i = 0; i < dim; ++i) expected.push_back(x0[r * dim + i] + n[i]);
    }
    expect_close(x, expected, 1e-5);
}

// silu(gate) ⊙ value, then a LayerNorm, stored as f32, bf16 and s8.
TEST_P(ModernOps, MlpHiddenGatesNormalisesAndStores) {
    Executor ex(engine, GetParam());
    const int rows = 17, hidden = 36;
    Tensor scale({hidden}, 27), shift({hidden}, 28);
    const std::vector<float> fc1 = random_vector(rows * 2 * hidden, 29, 3.f);
    std::vector<double> expected;
    for (int r = 0; r < rows; ++r) {
        std::vector<float> gated(hidden);
        for (int i = 0; i < hidden; ++i)
            gated[i] = float(silu(fc1[r * 2 * hidden + i]) * fc1[r * 2 * hidden + hidden + i]);
        for (double v : naive_norm(Norm::layer, gated.data(), hidden, 1e-6f, scale.view.data, shift.view.data))
            expected.push_back(v);
    }
    using Type = dnnl::memory::data_type;
    for (auto [type, tolerance] :
         {std::pair{Type::f32, 1e-5}, std::pair{Type::bf16, 1e-2}, std::pair{Type::s8, 1e-2}}) {
        std::vector<float> storage(rows * hidden), scales(rows), values(rows * hidden);
        const Activation dst(storage.data(), type, scales.data());
        MlpHidden op("hidden", ex.threads(), rows, hidden, true,
                     NormParams{Norm::layer, hidden, 1e-6f, scale.view.data, shift.view.data}, fc1.data(), dst);
        run(ex, op);
        for (int r = 0; r < rows; ++r) {
            if (type == Type::s8)
                for (int i = 0; i < hidden; ++i)
                    values[r * hidden + i] = static_cast<const std::int8_t*>(dst.data)[r * hidden + i] * scales[r];
            else
                load_row(dst, r, hidden, hidden, &values[r * hidden]);
        }
        expect_close(values, expected, tolerance);
    }
}

// softmax(scale · rope(norm(q)) rope(norm(k))ᵀ + bias) v per image and head, in double.
std::vector<double> naive_modern_attention(const std::vector<float>& qkv, const AttentionShape& s,
                                           const AttentionLayer& layer) {
    const int I = s.inner(), T = s.tokens, dh = s.head_dim;
    std::vector<double> out(std::size_t(s.batch) * T * I);
    for (int b = 0; b < s.batch; ++b)
        for (int h = 0; h < s.heads; ++h) {
            // q and k rows of this head, transformed as the layer says.
            std::vector<std::vector<double>> q(T), k(T);
            for (int t = 0; t < T; ++t)
                for (int part = 0; part < 2; ++part) {
                    const float* row = &qkv[(std::size_t(b) * T + t) * 3 * I + part * I + h * dh];
                    const auto& norm = part == 0 ? layer.q_norm : layer.k_norm;
                    std::vector<double> x = norm ? naive_norm(norm->kind, row, dh, norm->eps, norm->scale, norm->shift)
                                                 : std::vector<double>(row, row + dh);
                    if (layer.rope != Rope::none) {
                        const std::size_t at =
                            (layer.rope_per_head ? std::size_t(h) * T * dh : 0) + std::size_t(t) * dh;
                        std::vector<float> rounded(x.begin(), x.end());  // the engine rotates floats
                        x = naive_rope(layer.rope, std::vector<double>(rounded.begin(), rounded.end()),
                                       layer.rope_cos + at, layer.rope_sin + at);
                    }
                    (part == 0 ? q : k)[t] = x;
                }
            for (int i = 0; i < T; ++i) {
                std::vector<double> p(T);
                double max = -1e300, sum = 0;
                for (int j = 0; j < T; ++j) {
                    double dot = 0;
                    for (int d = 0; d < dh; ++d) dot += q[i][d] * k[j][d];
                    p[j] = s.scale * dot + (layer.bias ? layer.bias[(std::size_t(h) * T + i) * T + j] : 0.0);
                    max = std::max(max, p[j]);
                }
                for (double& x : p) sum += x = std::exp(x - max);
                for (int d = 0; d < dh; ++d) {
                    double acc = 0;
                    for (int j = 0; j < T; ++j)
                        acc += p[j] / sum * qkv[(std::size_t(b) * T + j) * 3 * I + 2 * I + h * dh + d];
                    out[(std::size_t(b) * T + i) * I + h * dh + d] = acc;
                }
            }
        }
    return out;
}

// head_dim 8: oneDNN's matmuls; 16: ours where the CPU has AVX-512
// (ops/f32_products.hpp), from the transformed copies of q and k, and with a
// bias between its scores and the softmax.
TEST_P(ModernOps, AttentionWithQkNormRopeAndBiasMatchesNaive) {
    for (const AttentionShape& s : {AttentionShape{2, 13, 3, 8, 0.35f}, AttentionShape{2, 13, 3, 16, 0.35f}}) {
        SCOPED_TRACE(s.head_dim);
        check_attention(s);
    }
}

void ModernOps::check_attention(const AttentionShape& s) {
    Executor ex(engine, GetParam());
    const int I = s.inner(), T = s.tokens, rows = s.batch * T;
    const std::vector<float> qkv = random_vector(rows * 3 * I, 31);
    Tensor q_scale({s.head_dim}, 32), q_shift({s.head_dim}, 33), k_scale({s.head_dim}, 34), k_shift({s.head_dim}, 35);
    // Angles as timm's tables hold them; cos 1 / sin 0 rows for an unrotated prefix token.
    std::vector<float> cos(std::size_t(s.heads) * T * s.head_dim), sin(cos.size());
    for (std::size_t i = 0; i < cos.size(); ++i) {
        const double angle = 0.37 * double(i % (T * s.head_dim)) / s.head_dim + 0.11 * double(i / (T * s.head_dim));
        const bool prefix = (i / s.head_dim) % T == 0;
        cos[i] = prefix ? 1.f : float(std::cos(angle));
        sin[i] = prefix ? 0.f : float(std::sin(angle));
    }
    const std::vector<float> bias = random_vector(std::size_t(s.heads) * T * T, 36);
    struct Case {
        bool qk_norm;
        Rope rope;
        bool per_head;
        bool with_bias;
    };
    for (const Case c : {Case{true, Rope::none, false, false}, Case{false, Rope::interleaved, false, false},
                         Case{false, Rope::half, true, false}, Case{true, Rope::half, false, true},
                         Case{false, Rope::none, false, true}}) {
        AttentionLayer layer;
        if (c.qk_norm) {
            layer.q_norm = NormParams{Norm::layer, s.head_dim, 1e-6f, q_scale.view.data, q_shift.view.data};
            layer.k_norm = NormParams{Norm::rms, s.head_dim, 1e-6f, k_scale.view.data, nullptr};
        }
        layer.rope = c.rope;
        layer.rope_cos = cos.data(), layer.rope_sin = sin.data(), layer.rope_per_head = c.per_head;
        layer.bias = c.with_bias ? bias.data() : nullptr;
        std::vector<float> out(rows * I, -1.f);
        std::vector<float> input = qkv;
        auto attention =
            inside(ex, [&] { return std::make_unique<Attention>(engine, ex.threads(), s, input.data(), out.data()); });
        attention->set_layer(&layer);
        run(ex, *attention);
        expect_close(out, naive_modern_attention(qkv, s, layer), 1e-5);
        EXPECT_EQ(input, qkv) << "attention transforms its own copies of q and k, not qkv";
    }
}

INSTANTIATE_TEST_SUITE_P(Threads, ModernOps, ::testing::Values(1, 2, 3, 5));

}  // namespace
}  // namespace onevit
