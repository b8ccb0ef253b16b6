// Each engine op against a naive loop written here, on random data, across
// thread counts (which change the tiling) and shapes with ragged edges.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "runtime/executor.hpp"
#include "ops/attention.hpp"
#include "ops/gelu.hpp"
#include "ops/bf16_products.hpp"
#include "ops/f32_products.hpp"
#include "ops/int8_products.hpp"
#include "ops/linear.hpp"
#include "ops/norm.hpp"
#include "ops/patch_embed.hpp"
#include "ops/patch_extract.hpp"
#include "ops/quantize.hpp"
#include "ops/softmax.hpp"
#include "ops/vector_math.hpp"
#include "op_test_support.hpp"

namespace onevit {
namespace {

class Ops : public OpTest {
protected:
    void check_attention(const AttentionShape& s);
};

TEST_P(Ops, LinearMatchesNaiveForEveryEpilogue) {
    Executor ex(engine, GetParam());
    const int rows = 37, in = 70, out = 1000;  // nothing a multiple of a block; several column tiles
    Tensor weight({out, in}, 1, 0.1f), bias({out}, 2);
    const std::vector<float> src = random_vector(rows * in, 3);
    for (Epilogue e :
         {Epilogue::none, Epilogue::gelu_erf, Epilogue::gelu_tanh, Epilogue::gelu_quick, Epilogue::residual_add}) {
        auto w = inside(ex, [&] {
            return LinearWeights(ex, weight_memory, weight.view, &bias.view, e, {rows, ex.threads()});
        });
        std::vector<float> s = src, dst = random_vector(rows * out, 4);
        std::vector<double> expected(dst.size());
        for (int r = 0; r < rows; ++r)
            for (int o = 0; o < out; ++o) {
                double acc = bias.view.data[o];
                for (int k = 0; k < in; ++k) acc += double(src[r * in + k]) * weight.view.data[o * in + k];
                if (e == Epilogue::gelu_erf) acc = gelu_erf(acc);
                if (e == Epilogue::gelu_tanh) acc = gelu_tanh(acc);
                if (e == Epilogue::gelu_quick) acc = gelu_quick(acc);
                if (e == Epilogue::residual_add) acc += dst[r * out + o];
                expected[r * out + o] = acc;
            }
        auto op = inside(ex, [&] { return make_linear("linear", w, engine, rows, s.data(), dst.data()); });
        run(ex, *op);
        expect_close(dst, expected, 1e-5);
    }
}

TEST_P(Ops, LayerNormMatchesNaive) {
    Executor ex(engine, GetParam());
    const int rows = 23, dim = 48;
    const float eps = 1e-6f;
    Tensor scale({dim}, 8), shift({dim}, 9);
    std::vector<float> src = random_vector(rows * dim, 10, 3.f), dst(src.size());
    for (std::size_t i = 0; i < src.size(); ++i) src[i] += 5.f;  // a mean far from 0
    auto op = inside(ex, [&] {
        return make_norm("norm", engine, ex.threads(), rows, {Norm::layer, dim, eps, scale.view.data, shift.view.data},
                         src.data(), dst.data());
    });
    run(ex, *op);
    const std::vector<double> expected = naive_layer_norm(src, rows, dim, eps, scale.view.data, shift.view.data);
    expect_close(dst, expected, 1e-5);
}

// head_dim 8: oneDNN's matmuls; 16 and 64: ours where the CPU has AVX-512
// (ops/f32_products.hpp), whose scores' lane maxima feed the softmax with or
// without the probabilities copied out.
TEST_P(Ops, AttentionMatchesNaive) {
    for (const AttentionShape& s : {AttentionShape{2, 11, 3, 8, 0.3f}, AttentionShape{2, 37, 3, 16, 0.3f},
                                    AttentionShape{1, 50, 2, 64, 0.125f}}) {
        SCOPED_TRACE(s.head_dim);
        check_attention(s);
    }
}

void Ops::check_attention(const AttentionShape& s) {
    Executor ex(engine, GetParam());
    const int I = s.inner(), rows = s.batch * s.tokens;
    std::vector<float> qkv = random_vector(rows * 3 * I, 11), out(rows * I, -1.f);
    auto attention =
        inside(ex, [&] { return std::make_unique<Attention>(engine, ex.threads(), s, qkv.data(), out.data()); });
    run(ex, *attention);
    // Asked for, the probabilities are copied out — here as block 1 of 2, block
    // 0 left alone — and the output is the same as without.
    const int T = s.tokens;
    const std::int64_t block = std::int64_t(s.heads) * T * T;
    std::vector<float> probs(s.batch * 2 * block, -1.f);
    const std::vector<float> out_without = out;
    const Attention::ProbabilitiesOut where{probs.data() + block, 2 * block};
    attention->copy_probabilities_to(&where);
    run(ex, *attention);
    EXPECT_EQ(out, out_without);
    std::vector<double> naive_probs;
    const std::vector<double> expected = naive_attention(qkv, s, &naive_probs);
    std::vector<double> expected_probs(probs.size(), -1.0);
    for (int b = 0; b < s.batch; ++b)
        std::copy(naive_probs.begin() + b * block, naive_probs.begin() + (b + 1) * block,
                  expected_probs.begin() + b * 2 * block + block);
    expect_close(out, expected, 1e-5);
    expect_close(probs, expected_probs, 1e-5);
}

// f32, and bf16 patches and weights (int8 precision's): two roundings of
// 2^-9 relative in each of 192 products, well under 1 % of the largest output.
TEST_P(Ops, PatchEmbedMatchesNaive) {
    Executor ex(engine, GetParam());
    // Not a structured binding: lambdas capture those only from C++20 (clang 14 refuses).
    for (const auto& case_ :
         {std::pair{dnnl::memory::data_type::f32, 1e-5}, std::pair{dnnl::memory::data_type::bf16, 1e-2}}) {
        const dnnl::memory::data_type type = case_.first;
        const double tolerance = case_.second;
        const PatchGrid s{3, 24, 16, 8};
        const int batch = 2, G = s.patches(), patch = s.patch, dim = 70;
        Tensor weight({dim, s.channels, patch, patch}, 12, 0.1f), bias({dim}, 13);
        auto w = inside(
            ex, [&] { return PatchEmbedWeights(ex, weight_memory, s, weight.view, &bias.view, ex.threads(), type); });
        const std::vector<float> image = random_vector(batch * s.channels * s.image_height * s.image_width, 14);
        std::vector<float> out(batch * G * dim);
        auto embedding =
            inside(ex, [&] { return std::make_unique<PatchEmbedding>(w, engine, ex.threads(), batch, out.data()); });
        embedding->extract->set_input(image.data());
        ThreadMemory memory(engine, ex.threads(), embedding->linear->scratchpad_bytes(),
                            std::max(embedding->linear->workspace_bytes(), embedding->extract->workspace_bytes()));
        embedding->linear->bind(memory);
        ex.run([&] { Schedule(ex, memory).run({embedding->extract.get(), embedding->linear.get()}); });
        std::vector<double> expected;
        for (int b = 0; b < batch; ++b)
            for (int gy = 0; gy < s.grid_height(); ++gy)
                for (int gx = 0; gx < s.grid_width(); ++gx)
                    for (int o = 0; o < dim; ++o) {
                        double acc = bias.view.data[o];
                        for (int c = 0; c < s.channels; ++c)
                            for (int y = 0; y < patch; ++y)
                                for (int x = 0; x < patch; ++x)
                                    acc += double(image[((b * s.channels + c) * s.image_height + gy * patch + y) *
                                                            s.image_width +
                                                        gx * patch + x]) *
                                           weight.view.data[((o * s.channels + c) * patch + y) * patch + x];
                        expected.push_back(acc);
                    }
        expect_close(out, expected, tolerance);
    }
}

// Patches of 4 (a copy of any width) and of 16 (the fixed-size copy); by
// thread count, tiles start and end inside a grid row.
TEST_P(Ops, PatchExtractionMatchesNaive) {
    Executor ex(engine, GetParam());
    for (const PatchGrid g : {PatchGrid{2, 12, 20, 4}, PatchGrid{3, 48, 80, 16}}) {
        const int batch = 3;
        const std::vector<float> images = random_vector(batch * g.channels * g.image_height * g.image_width, 16);
        std::vector<float> rows(batch * g.patches() * g.patch_dim(), -1.f);
        ExtractPatches extract(g, split_evenly(batch * g.patches(), ex.threads()), rows.data());
        extract.set_input(images.data());
        run(ex, extract);
        const std::vector<float> expected = naive_patch_rows(images, g, batch);
        expect_close(rows, std::vector<double>(expected.begin(), expected.end()), 0);
    }
}

TEST_P(Ops, PrimitivesCannotBeCreatedOutsideTheArena) {
    Executor ex(engine, GetParam());
    Tensor weight({8, 8}, 15);
    EXPECT_THROW(LinearWeights(ex, weight_memory, weight.view, nullptr, Epilogue::none, {4, ex.threads()}),
                 std::logic_error);
}

INSTANTIATE_TEST_SUITE_P(Threads, Ops, ::testing::Values(1, 2, 3, 7));

// The row loops with a polynomial exp (ops/vector_math.hpp), against libm in
// double over the whole range where the functions bend or saturate.
// The loops' input is the value times the scale plus the bias: here 2x · 0.25
// + x / 2, exactly x in float, so a loop that skipped either gets another x.
// (4e-7: the int8 layers that run these store their output as s8, steps of
// 1/127 of the row's maximum, or bf16, 2^-9 relative.)
TEST(RowLoops, GeluMatchesTheExactFunctionsWithin4e7) {
    std::vector<float> x(4801);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = -12.f + 0.005f * float(i);
    std::vector<float> twice(x.size()), half(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) twice[i] = 2.f * x[i], half[i] = 0.5f * x[i];
    const std::pair<Gelu, double (*)(double)> cases[] = {
        {Gelu::erf, gelu_erf}, {Gelu::tanh, gelu_tanh}, {Gelu::quick, gelu_quick}};
    for (auto [gelu, exact] : cases) {
        std::vector<float> y = twice;
        apply_gelu(gelu, y.data(), static_cast<int>(y.size()), 0.25f, half.data());
        for (std::size_t i = 0; i < x.size(); ++i)
            ASSERT_NEAR(y[i], exact(x[i]), 4e-7 * std::max(1.0, std::abs(double(x[i])))) << "x = " << x[i];
    }
}

// The GELU loops' other output: the row's maximum |gelu| (an s8 row's
// scale), exactly what a pass of its own (quantize.hpp's max_abs_of) gives.
TEST(RowLoops, GeluReturnsItsRowMaximum) {
    const int n = 1001;  // not a multiple of a vector
    const std::vector<float> x = random_vector(n, 17, 3.f), bias = random_vector(n, 18);
    for (Gelu gelu : {Gelu::erf, Gelu::tanh, Gelu::quick}) {
        std::vector<float> y = x;
        const float max_abs = apply_gelu(gelu, y.data(), n, 0.7f, bias.data());
        EXPECT_EQ(max_abs, max_abs_of(y.data(), n));
    }
}

// The GELU with its bf16 store in one pass (AVX512-BF16's rounding): bit for
// bit apply_gelu's floats stored by store_row, on a row whose length is not a
// multiple of the 32 values a step, and a NaN stays NaN.
TEST(RowLoops, GeluToBf16IsApplyGeluThenStoreRow) {
    if (!cpu_rounds_to_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
    const int n = 1001;
    std::vector<float> x = random_vector(n, 19, 3.f);
    x[7] = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> bias = random_vector(n, 20);
    for (Gelu gelu : {Gelu::erf, Gelu::tanh, Gelu::quick}) {
        std::vector<float> y = x;
        apply_gelu(gelu, y.data(), n, 0.7f, bias.data());
        std::vector<std::uint16_t> fused(n + 1, 0x1234), separate(n);
        apply_gelu_to_bf16(gelu, x.data(), n, 0.7f, bias.data(), fused.data());
        store_row(y.data(), n, Activation(separate.data(), dnnl::memory::data_type::bf16), 0, n);
        EXPECT_EQ(fused[n], 0x1234) << "wrote past the row";
        fused.pop_back();
        EXPECT_EQ(fused, separate);
    }
}

// The bf16 softmax's exponential, against libm over its whole clamped range.
TEST(RowLoops, ExpForBf16IsWithin8e5OfExp) {
    for (float x = -87.f; x <= 88.f; x += 0.0137f) {
        const double exact = std::exp(double(x));
        ASSERT_NEAR(exp_for_bf16(x), exact, 8e-5 * exact) << "x = " << x;
    }
}

// A hostile model's NaNs pass through the row loops as NaN (or, quantized,
// as some int8), never as undefined behaviour (the sanitizer builds check).
TEST(RowLoops, NanInputsStayDefined) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> row = {1.f, nan, -2.f, 3.f};
    std::vector<float> gelu = row;
    const std::vector<float> zeros(4, 0.f);
    apply_gelu(Gelu::erf, gelu.data(), 4, 1.f, zeros.data());
    EXPECT_TRUE(std::isnan(gelu[1]));
    EXPECT_FLOAT_EQ(gelu[0], float(gelu_erf(1.0)));
    std::vector<float> scores = row;
    softmax_rows(scores.data(), 1, 4, Activation(scores.data()));
    EXPECT_TRUE(std::isnan(scores[0]));
    std::vector<std::int8_t> q(4);
    float scale = 0;
    store_row(row.data(), 4, Activation(q.data(), dnnl::memory::data_type::s8, &scale), 0, 4);
    for (std::int8_t v : q) EXPECT_LE(std::abs(int(v)), 127);
}

// At bf16 (the AVX-512 kernel where the CPU has it) with and without a bias,
// over widths below, at and past a vector of 16.
TEST(RowLoops, SoftmaxMatchesNaiveAtF32AndBf16) {
    const int rows = 5;
    for (int cols : {5, 16, 197}) {
        std::vector<float> scores = random_vector(rows * cols, 31);
        for (int c = 0; c < cols; ++c) {
            scores[1 * cols + c] *= 200.f;   // saturating: one or two values carry the row
            scores[2 * cols + c] = 3.f;      // uniform
            scores[3 * cols + c] -= 1000.f;  // far below zero
        }
        const std::vector<float> bias = random_vector(rows * cols, 32, 3.f);
        for (bool with_bias : {false, true}) {
            std::vector<double> expected(scores.size());
            for (int r = 0; r < rows; ++r) {
                std::vector<double> row(cols);
                for (int c = 0; c < cols; ++c) row[c] = scores[r * cols + c] + (with_bias ? bias[r * cols + c] : 0.f);
                const double max = *std::max_element(row.begin(), row.end());
                double sum = 0;
                for (int c = 0; c < cols; ++c) sum += std::exp(row[c] - max);
                for (int c = 0; c < cols; ++c) expected[r * cols + c] = std::exp(row[c] - max) / sum;
            }
            const float* b = with_bias ? bias.data() : nullptr;
            std::vector<float> in_place = scores;
            softmax_rows(in_place.data(), rows, cols, Activation(in_place.data()), b);
            for (std::size_t i = 0; i < expected.size(); ++i) ASSERT_NEAR(in_place[i], expected[i], 1e-6) << i;
            if (!with_bias && has_f32_products_kernel()) {
                // from the scores and their lane maxima (ops/f32_products.hpp's): f32 exponentials
                // in place times 1 / their sum
                std::vector<float> from_scores = scores, inverse_sums(rows, -1.f),
                                   maxima(rows * 16, -std::numeric_limits<float>::infinity());
                for (int r = 0; r < rows; ++r)
                    for (int c = 0; c < cols; ++c)
                        maxima[r * 16 + c % 16] = std::max(maxima[r * 16 + c % 16], scores[r * cols + c]);
                softmax_rows_f32_from_scores(from_scores.data(), rows, cols, maxima.data(), inverse_sums.data());
                for (std::size_t i = 0; i < expected.size(); ++i)
                    ASSERT_NEAR(from_scores[i] * inverse_sums[i / cols], expected[i], 1e-6) << "from the scores, " << i;
            }

            std::vector<float> work = scores, widened(cols);
            std::vector<std::uint16_t> bf16(scores.size());
            const Activation probabilities(bf16.data(), dnnl::memory::data_type::bf16);
            softmax_rows(work.data(), rows, cols, probabilities, b);
            for (int r = 0; r < rows; ++r) {
                load_row(probabilities, r, cols, cols, widened.data());
                for (int c = 0; c < cols; ++c)  // a bf16 rounding (2^-8 relative) and exp_for_bf16 (8e-5)
                    ASSERT_NEAR(widened[c], expected[r * cols + c], expected[r * cols + c] * (1.0 / 256 + 8e-5) + 1e-7)
                        << cols << " cols, " << r << "," << c << (with_bias ? ", bias" : "");
            }
            if (with_bias || !has_bf16_products_kernel()) continue;
            // from the scores and their lane maxima (ops/bf16_products.hpp's): bf16 exponentials
            // times 1 / their sum, within the same bounds
            std::vector<float> maxima(rows * 16, -std::numeric_limits<float>::infinity()), inverse_sums(rows, -1.f);
            for (int r = 0; r < rows; ++r)
                for (int c = 0; c < cols; ++c)
                    maxima[r * 16 + c % 16] = std::max(maxima[r * 16 + c % 16], scores[r * cols + c]);
            std::vector<std::uint16_t> exponentials(scores.size());
            softmax_rows_bf16_from_scores(scores.data(), rows, cols, maxima.data(), exponentials.data(),
                                          inverse_sums.data());
            const Activation e(exponentials.data(), dnnl::memory::data_type::bf16);
            for (int r = 0; r < rows; ++r) {
                load_row(e, r, cols, cols, widened.data());
                for (int c = 0; c < cols; ++c)
                    ASSERT_NEAR(widened[c] * inverse_sums[r], expected[r * cols + c],
                                expected[r * cols + c] * (1.0 / 256 + 8e-5) + 1e-7)
                        << "from the scores, " << cols << " cols, " << r << "," << c;
            }
        }
    }
}

// int8 attention's softmax, the AVX-512 kernel (where the CPU has it) and the
// portable loops, against the naive formula in double: row r's u8 steps times
// its scale are p · v's scale within half a step (and the exponential's 8e-5),
// the step 1/255 of the row's largest. Widths below, at and past a vector of
// 16 (masked tails), with and without k's scales and a bias.
TEST(RowLoops, SoftmaxU8MatchesNaive) {
    const int rows = 5;  // the kernels interleave 4 rows: 4 + 1; 1,025 columns run a row at a time
    for (int cols : {1, 5, 16, 17, 197, 1025}) {
        const std::vector<float> products = random_vector(rows * cols, 51, 300.f);
        const std::vector<float> q_scales = {0.02f, 0.05f, 0.001f, 0.03f, 0.04f},
                                 k_scales = random_vector(cols, 52, 0.01f), v_scales = random_vector(cols, 53, 0.02f);
        std::vector<float> positive_k(cols), positive_v(cols), bias = random_vector(rows * cols, 54, 2.f);
        for (int j = 0; j < cols; ++j) {
            positive_k[j] = 0.015f + std::abs(k_scales[j]), positive_v[j] = 0.005f + std::abs(v_scales[j]);
            bias[cols + j] -= 150.f;  // scores all far below 0: e^x underflows, not e^(x − max)
        }
        const float scale = 0.125f;
        for (bool with_k_scales : {true, false})
            for (bool with_bias : {false, true}) {
                const float* k = with_k_scales ? positive_k.data() : nullptr;
                const float* b = with_bias ? bias.data() : nullptr;
                if (has_int8_products_kernel() && k && !b) {  // from the scores, as the kernel scales them
                    std::vector<float> scores(rows * cols), maxima(rows * 16, -1e30f), p_scales(rows),
                        want_scales(rows);
                    for (int r = 0; r < rows; ++r)
                        for (int j = 0; j < cols; ++j) {
                            scores[r * cols + j] = products[r * cols + j] * (q_scales[r] * scale * k[j]);
                            maxima[r * 16 + j % 16] = std::max(maxima[r * 16 + j % 16], scores[r * cols + j]);
                        }
                    std::vector<std::uint8_t> u8(rows * cols), want(rows * cols);
                    softmax_rows_u8_from_scores(scores.data(), rows, cols, maxima.data(), positive_v.data(), u8.data(),
                                                p_scales.data());
                    std::vector<float> work = products;
                    softmax_rows_u8(work.data(), rows, cols, q_scales.data(), scale, k, nullptr, positive_v.data(),
                                    want.data(), want_scales.data(), nullptr);
                    EXPECT_EQ(u8, want) << cols << " cols";
                    EXPECT_EQ(p_scales, want_scales) << cols << " cols";
                }
                for (auto* softmax : {&softmax_rows_u8, &softmax_rows_u8_portable}) {
                    std::vector<float> work = products, p_scales(rows);
                    std::vector<std::uint8_t> u8(rows * cols);
                    (*softmax)(work.data(), rows, cols, q_scales.data(), scale, k, b, positive_v.data(), u8.data(),
                               p_scales.data(), nullptr);
                    for (int r = 0; r < rows; ++r) {
                        std::vector<double> x(cols), weighted(cols);
                        for (int j = 0; j < cols; ++j)
                            x[j] = double(products[r * cols + j]) * q_scales[r] * scale * (k ? k[j] : 1.) +
                                   (b ? b[r * cols + j] : 0.);
                        const double max = *std::max_element(x.begin(), x.end());
                        double sum = 0;
                        for (int j = 0; j < cols; ++j) sum += std::exp(x[j] - max);
                        for (int j = 0; j < cols; ++j) weighted[j] = std::exp(x[j] - max) / sum * positive_v[j];
                        const double step = *std::max_element(weighted.begin(), weighted.end()) / 255;
                        ASSERT_NEAR(p_scales[r], step, 2e-4 * step)
                            << cols << " cols, row " << r << (softmax == &softmax_rows_u8 ? "" : ", portable")
                            << (k ? " k" : "") << (b ? " b" : "");
                        for (int j = 0; j < cols; ++j)
                            ASSERT_NEAR(u8[r * cols + j] * double(p_scales[r]), weighted[j],
                                        0.5 * step + 2e-4 * weighted[j])
                                << cols << " cols, row " << r << ", column " << j << (k ? ", k scales" : "")
                                << (b ? ", bias" : "") << (softmax == &softmax_rows_u8 ? "" : ", portable");
                    }
                }
            }
    }
}

// int8 attention's matmul kernel (AVX-512 VNNI) against plain sums of
// products, exactly: as q kᵀ (s8 q, its sign bits flipped, times packed
// keys) and as p v (u8 p, rows longer than k, times packed values); rows
// around its blocks of 6, columns around its vectors of 16 and blocks of 4
// vectors, k around groups of 4 and chunks of 16 groups; every s8 value.
ProductsOut f32_rows(float* out, std::int64_t stride) {
    ProductsOut to;
    to.f32 = out, to.stride = stride;
    return to;
}
ProductsOut bf16_rows(std::uint16_t* out, std::int64_t stride, const float* row_scales) {
    ProductsOut to;
    to.bf16 = out, to.stride = stride, to.row_scales = row_scales;
    return to;
}

TEST(RowLoops, Int8ProductsMatchNaive) {
    if (!has_int8_products_kernel()) GTEST_SKIP() << "no AVX-512 VNNI here: attention runs oneDNN's matmuls";
    std::mt19937 random(61);
    std::uniform_int_distribution<int> byte(0, 255);
    const auto check = [](const std::vector<float>& out, int rows, int n, const auto& expected, const char* what) {
        for (int i = 0; i < rows; ++i)
            for (int j = 0; j < n; ++j)
                ASSERT_EQ(out[i * n + j], float(expected(i, j)))
                    << what << ", " << rows << " rows, " << n << " columns: " << i << "," << j;
    };
    for (int rows : {1, 6, 7, 13})
        for (int k : {4, 64, 68}) {  // q kᵀ: keys [n][k], k = head_dim
            for (int n : {1, 5, 16, 17, 197, 208}) {
                const int key_stride = k + 8;  // keys' rows apart, as in qkv's rows
                std::vector<std::int8_t> q(rows * k), keys(n * key_stride);
                for (auto& v : q) v = static_cast<std::int8_t>(byte(random));
                for (auto& v : keys) v = static_cast<std::int8_t>(byte(random));
                std::vector<char> packed(packed_b_bytes(n, k));
                pack_keys(keys.data(), key_stride, n, k, packed.data());
                std::vector<std::int8_t> flipped = q;
                flip_sign_bits(flipped.data(), flipped.size());
                for (std::size_t i = 0; i < q.size(); ++i) ASSERT_EQ(std::uint8_t(flipped[i]), q[i] + 128);
                std::vector<float> out(rows * n, -1.f);
                int8_products(reinterpret_cast<const std::uint8_t*>(flipped.data()), k, rows, packed.data(), n, k,
                              f32_rows(out.data(), n));
                const auto product = [&](int i, int j) {
                    std::int32_t sum = 0;
                    for (int d = 0; d < k; ++d) sum += q[i * k + d] * keys[j * key_stride + d];
                    return sum;
                };
                check(out, rows, n, product, "q kT");
                // scaled as softmax_rows_u8 scales them, with each row's lane maxima
                const std::vector<float> row_scales = random_vector(rows, 62, 0.1f),
                                         column_scales = random_vector(n, 63, 0.1f);
                std::vector<float> maxima(rows * 16, 7.f);
                const ScaledScores scaled{row_scales.data(), 0.125f, column_scales.data(), maxima.data()};
                ProductsOut to_scores = f32_rows(out.data(), n);
                to_scores.scaled = &scaled;
                int8_products(reinterpret_cast<const std::uint8_t*>(flipped.data()), k, rows, packed.data(), n, k,
                              to_scores);
                for (int i = 0; i < rows; ++i) {
                    std::vector<float> lane_max(16, -std::numeric_limits<float>::infinity());
                    for (int j = 0; j < n; ++j) {
                        const float x = float(product(i, j)) * (row_scales[i] * 0.125f * column_scales[j]);
                        ASSERT_EQ(out[i * n + j], x)
                            << "scaled, " << rows << " rows, " << n << " columns: " << i << "," << j;
                        lane_max[j % 16] = std::max(lane_max[j % 16], x);
                    }
                    for (int l = 0; l < 16; ++l) ASSERT_EQ(maxima[i * 16 + l], lane_max[l]) << i << ", lane " << l;
                }
            }
        }
    for (int rows : {1, 6, 7, 13})
        for (int k : {1, 5, 64, 197})  // p v: values [k][n], p rows of stride k + 3
            for (int n : {16, 64, 80, 128}) {
                const int stride = k + 3;
                std::vector<std::uint8_t> p(rows * stride + 4);
                const int value_stride = n + 16;  // values' rows apart, as in qkv's rows
                std::vector<std::int8_t> values(k * value_stride);
                for (auto& v : p) v = static_cast<std::uint8_t>(byte(random));
                for (auto& v : values) v = static_cast<std::int8_t>(byte(random));
                std::vector<char> packed(packed_b_bytes(n, k));
                pack_values(values.data(), value_stride, k, n, packed.data());
                std::vector<float> out(rows * n, -1.f);
                int8_products(p.data(), stride, rows, packed.data(), n, k, f32_rows(out.data(), n));
                const auto product = [&](int i, int j) {
                    std::int32_t sum = 0;
                    for (int d = 0; d < k; ++d) sum += p[i * stride + d] * values[d * value_stride + j];
                    return sum;
                };
                check(out, rows, n, product, "p v");
                // into bf16 rows (of stride n + 16) times each row's scale, as store_row rounds them
                const std::vector<float> row_scales = random_vector(rows, 64, 0.01f);
                std::vector<std::uint16_t> bf16(rows * (n + 16), 0xdead), want = bf16;
                int8_products(p.data(), stride, rows, packed.data(), n, k,
                              bf16_rows(bf16.data(), n + 16, row_scales.data()));
                for (int i = 0; i < rows; ++i) {
                    std::vector<float> sums(n);
                    for (int j = 0; j < n; ++j) sums[j] = float(product(i, j));
                    store_row(sums.data(), n, Activation(want.data(), dnnl::memory::data_type::bf16), i, n + 16, 0,
                              row_scales[i]);
                }
                ASSERT_EQ(bf16, want) << "p v to bf16, " << rows << " rows, k " << k << ", n " << n;
            }
}

// out[i][j] (rows out_stride apart) against scale · Σ_d terms(i, j, d) in
// double, within the f32 sums' roundings: k · 2^-24 of Σ |terms| (scale a
// power of 2).
template <class Terms>
void expect_sums_close(const std::vector<float>& out, std::int64_t out_stride, int rows, int n, double scale,
                       const Terms& terms, int k, const char* what) {
    for (int i = 0; i < rows; ++i)
        for (int j = 0; j < n; ++j) {
            double sum = 0, magnitude = 0;
            for (int d = 0; d < k; ++d) {
                const double term = terms(i, j, d);
                sum += term, magnitude += std::abs(term);
            }
            ASSERT_NEAR(out[i * out_stride + j], scale * sum, std::abs(scale) * magnitude * k * 0x1p-24 + 1e-30)
                << what << ", " << rows << " rows, k " << k << ", n " << n << ": " << i << "," << j;
        }
}

// q kᵀ through products(out) (a kernel, told where its output goes): as it
// is, then scaled by 1/8 with each row's lane maxima of what it wrote.
template <class Products, class Terms>
void expect_scores_close(const Products& products, int rows, int n, int k, const Terms& terms) {
    std::vector<float> out(rows * n, -1.f), maxima(rows * 16, 7.f);
    products(f32_rows(out.data(), n));
    expect_sums_close(out, n, rows, n, 1.0, terms, k, "q kT");
    const ScaledScores scaled{nullptr, 0.125f, nullptr, maxima.data()};
    ProductsOut to_scores = f32_rows(out.data(), n);
    to_scores.scaled = &scaled;
    products(to_scores);
    expect_sums_close(out, n, rows, n, 0.125, terms, k, "scaled q kT");
    for (int i = 0; i < rows; ++i) {
        std::vector<float> lane_max(16, -std::numeric_limits<float>::infinity());
        for (int j = 0; j < n; ++j) lane_max[j % 16] = std::max(lane_max[j % 16], out[i * n + j]);
        for (int l = 0; l < 16; ++l) ASSERT_EQ(maxima[i * 16 + l], lane_max[l]) << i << ", lane " << l;
    }
}

// attention's bf16 q kᵀ and p v by the AVX512-BF16 kernel, against plain
// sums in double: within the f32 sums' roundings, k · 2^-24 of Σ |products|
// (the products of bf16 values are exact in f32). Operands strided as in qkv,
// p's rows odd in length with NaN past their end (the kernel reads none of it).
TEST(RowLoops, Bf16ProductsMatchNaive) {
    if (!has_bf16_products_kernel()) GTEST_SKIP() << "no AVX512_BF16 here: bf16 attention runs oneDNN's matmuls";
    const auto bf16_of = [](const std::vector<float>& values) {
        std::vector<std::uint16_t> out(values.size());
        store_row(values.data(), static_cast<int>(values.size()), Activation(out.data(), dnnl::memory::data_type::bf16),
                  0, 0);
        return out;
    };
    const auto widened = [](std::uint16_t bits) {
        const std::uint32_t wide = std::uint32_t(bits) << 16;
        float value;
        std::memcpy(&value, &wide, sizeof value);
        return value;
    };
    for (int rows : {1, 6, 7, 13})
        for (int k : {2, 64, 96}) {  // q kᵀ: q and keys rows of stride 3k, as in qkv
            for (int n : {1, 5, 16, 17, 197}) {
                const std::vector<std::uint16_t> q = bf16_of(random_vector(rows * 3 * k, 71, 2.f)),
                                                 keys = bf16_of(random_vector(n * 3 * k, 72, 2.f));
                std::vector<char> packed(packed_bf16_b_bytes(n, k));
                pack_bf16_keys(keys.data(), 3 * k, n, k, packed.data());
                const auto term = [&](int i, int j, int d) {
                    return double(widened(q[i * 3 * k + d])) * widened(keys[j * 3 * k + d]);
                };
                expect_scores_close(
                    [&](const ProductsOut& to) { bf16_products(q.data(), 3 * k, rows, packed.data(), n, k, to); }, rows,
                    n, k, term);
            }
        }
    const std::uint16_t nan = 0x7fc0;
    for (int rows : {1, 6, 7, 13})
        for (int k : {1, 5, 64, 197})  // p v: p rows of stride k + 3, values [k][n] of stride n + 32
            for (int n : {16, 48, 64, 128}) {
                const int stride = k + 3, value_stride = n + 32;
                std::vector<std::uint16_t> p = bf16_of(random_vector(rows * stride, 73, 1.f));
                for (int i = 0; i < rows; ++i) std::fill_n(p.begin() + i * stride + k, 3, nan);
                const std::vector<std::uint16_t> values = bf16_of(random_vector(k * value_stride, 74, 3.f));
                std::vector<char> packed(packed_bf16_b_bytes(n, k));
                pack_bf16_values(values.data(), value_stride, k, n, packed.data());
                const auto term = [&](int i, int j, int d) {
                    return double(widened(p[i * stride + d])) * widened(values[d * value_stride + j]);
                };
                std::vector<float> out(rows * n, -1.f);
                bf16_products(p.data(), stride, rows, packed.data(), n, k, f32_rows(out.data(), n));
                expect_sums_close(out, n, rows, n, 1.0, term, k, "p v");
                // into bf16 rows (of stride n + 16): the f32 sums, rounded as store_row rounds them
                std::vector<std::uint16_t> bf16(rows * (n + 16), 0xdead), want = bf16;
                bf16_products(p.data(), stride, rows, packed.data(), n, k, bf16_rows(bf16.data(), n + 16, nullptr));
                for (int i = 0; i < rows; ++i)
                    store_row(out.data() + i * n, n, Activation(want.data(), dnnl::memory::data_type::bf16), i, n + 16);
                ASSERT_EQ(bf16, want) << "p v to bf16, " << rows << " rows, k " << k << ", n " << n;
            }
}

// attention's f32 q kᵀ and p v by the AVX-512 kernel (FMA), against plain
// sums in double: within the f32 sums' roundings, k · 2^-24 of Σ |products|
// (each FMA rounds once). Operands strided as in qkv, p's rows odd in length
// with NaN past their end (the kernel reads none of it); row scales applied
// as the epilogue does, to the f32 sums.
TEST(RowLoops, F32ProductsMatchNaive) {
    if (!has_f32_products_kernel()) GTEST_SKIP() << "no AVX-512 here: f32 attention runs oneDNN's matmuls";
    for (int rows : {1, 6, 7, 13})
        for (int k : {1, 5, 64, 96}) {  // q kᵀ: q and keys rows of stride 3k, as in qkv
            for (int n : {1, 5, 16, 17, 197}) {
                const std::vector<float> q = random_vector(rows * 3 * k, 81, 2.f),
                                         keys = random_vector(n * 3 * k, 82, 2.f);
                std::vector<char> packed(packed_f32_b_bytes(n, k));
                pack_f32_keys(keys.data(), 3 * k, n, k, packed.data());
                const auto term = [&](int i, int j, int d) { return double(q[i * 3 * k + d]) * keys[j * 3 * k + d]; };
                expect_scores_close(
                    [&](const ProductsOut& to) { f32_products(q.data(), 3 * k, rows, packed.data(), n, k, to); }, rows,
                    n, k, term);
            }
        }
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (int rows : {1, 6, 7, 13})
        for (int k : {1, 5, 64, 197})  // p v: p rows of stride k + 3, values [k][n] of stride n + 32
            for (int n : {16, 48, 64, 128}) {
                const int stride = k + 3, value_stride = n + 32;
                std::vector<float> p = random_vector(rows * stride, 83, 1.f);
                for (int i = 0; i < rows; ++i) std::fill_n(p.begin() + i * stride + k, 3, nan);
                const std::vector<float> values = random_vector(k * value_stride, 84, 3.f);
                std::vector<char> packed(packed_f32_b_bytes(n, k));
                pack_f32_values(values.data(), value_stride, k, n, packed.data());
                const auto term = [&](int i, int j, int d) {
                    return double(p[i * stride + d]) * values[d * value_stride + j];
                };
                std::vector<float> out(rows * n, -1.f);
                f32_products(p.data(), stride, rows, packed.data(), n, k, f32_rows(out.data(), n));
                expect_sums_close(out, n, rows, n, 1.0, term, k, "p v");
                // into rows of stride n + 16 times each row's scale: the f32 sums times it, nothing else written
                const std::vector<float> row_scales = random_vector(rows, 85, 0.5f);
                std::vector<float> scaled(rows * (n + 16), -7.f), want = scaled;
                ProductsOut to_rows = f32_rows(scaled.data(), n + 16);
                to_rows.row_scales = row_scales.data();
                f32_products(p.data(), stride, rows, packed.data(), n, k, to_rows);
                for (int i = 0; i < rows; ++i)
                    for (int j = 0; j < n; ++j) want[i * (n + 16) + j] = out[i * n + j] * row_scales[i];
                ASSERT_EQ(scaled, want) << "p v times row scales, " << rows << " rows, k " << k << ", n " << n;
            }
}

// store_row's scale, at every type: f32 exactly, bf16 within one rounding,
// s8 within half a step of its row scale, which carries the factor.
TEST(RowLoops, StoreRowScalesTheRowAtEveryType) {
    const int n = 70;
    const float scale = 0.3f;
    const std::vector<float> row = random_vector(n, 41, 5.f);
    std::vector<float> f32(n), widened(n);
    store_row(row.data(), n, Activation(f32.data()), 0, n, 0, scale);
    for (int i = 0; i < n; ++i) EXPECT_EQ(f32[i], row[i] * scale);

    std::vector<std::uint16_t> bf16(n);
    const Activation bf16_row(bf16.data(), dnnl::memory::data_type::bf16);
    store_row(row.data(), n, bf16_row, 0, n, 0, scale);
    load_row(bf16_row, 0, n, n, widened.data());
    for (int i = 0; i < n; ++i) EXPECT_NEAR(widened[i], row[i] * scale, std::abs(row[i] * scale) / 256);

    std::vector<std::int8_t> s8(n);
    float row_scale = 0;
    store_row(row.data(), n, Activation(s8.data(), dnnl::memory::data_type::s8, &row_scale), 0, n, 0, scale);
    for (int i = 0; i < n; ++i) EXPECT_NEAR(s8[i] * row_scale, row[i] * scale, 0.5 * row_scale * 1.0001);
}

// quantize_bf16_rows is store_row's s8 case on the widened rows, value for
// value and scale for scale: rows of both signs whose maximum is negative or
// positive, a zero row, and a row with a NaN (a hostile model's).
// n = 64 and 192 (multiples of 32) run the AVX-512 kernel where the CPU has it.
TEST(RowLoops, QuantizeBf16RowsMatchesStoreRow) {
    for (const int n : {70, 64, 192}) {
        SCOPED_TRACE(n);
        const int rows = 5, stride = 3 * n;
        std::vector<float> values = random_vector(rows * stride, 43, 5.f);
        values[17] = -9.f;
        std::fill_n(&values[2 * stride], n, 0.f);
        values[3 * stride + 5] = std::numeric_limits<float>::quiet_NaN();
        // scale 1: ties, rounded to even
        const float ties[] = {127.f, 2.5f, -3.5f, 0.5f, -0.5f, 126.5f};
        std::copy(std::begin(ties), std::end(ties), &values[4 * stride + 1]);
        std::vector<std::uint16_t> bf16(values.size());
        const Activation bf16_rows(bf16.data(), dnnl::memory::data_type::bf16);
        std::vector<std::int8_t> expected(rows * n), q(rows * n);
        std::vector<float> widened(n), expected_scales(rows), scales(rows);
        const Activation s8(expected.data(), dnnl::memory::data_type::s8, expected_scales.data());
        for (int r = 0; r < rows; ++r) {
            store_row(&values[r * stride], stride, bf16_rows, r, stride);
            load_row(bf16_rows, r, stride, n, widened.data());
            store_row(widened.data(), n, s8, r, n);
        }
        quantize_bf16_rows(bf16.data(), stride, rows, n, q.data(), scales.data());
        EXPECT_EQ(scales, expected_scales);
        EXPECT_EQ(q, expected);
        EXPECT_EQ(expected[4 * n + 2], 2);  // the ties reached the rows
        EXPECT_EQ(expected[4 * n + 3], -4);
    }
}

}  // namespace
}  // namespace onevit
