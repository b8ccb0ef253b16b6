// Each op at bf16 and int8 against a naive double loop on the f32 values,
// across thread counts (which change the tiling). The tolerances are what the
// data types allow: bf16 keeps 8 significant bits (relative rounding 2^-9 per
// value); int8 rounds each value to within half a step of max|row| / 127.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "runtime/executor.hpp"
#include "op_test_support.hpp"
#include "ops/attention.hpp"
#include "ops/convert_rows.hpp"
#include "ops/linear.hpp"
#include "ops/norm.hpp"
#include "ops/patch_embed.hpp"
#include "ops/quantize.hpp"

namespace onevit {
namespace {

using Type = dnnl::memory::data_type;

// A bf16 value is the top half of the f32 with the same bits.
float widen_bf16(std::uint16_t value) {
    const std::uint32_t bits = std::uint32_t(value) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// A buffer of rows × cols of any activation type, with row scales for s8, or
// scales per group of `group` columns.
struct Buffer {
    Type type;
    int rows, cols, group;
    std::vector<float> storage;  // float-sized, like the engine's AlignedBuffers
    std::vector<float> scales;
    Buffer(Type t, int r, int c, int g = 0)
        : type(t), rows(r), cols(c), group(g), storage(std::size_t(r) * c), scales(std::size_t(r) * (g ? c / g : 1)) {}
    Activation activation() { return Activation(storage.data(), type, scales.data(), group); }

    static Buffer of(Type t, int r, int c, const std::vector<float>& values, int group = 0) {
        Buffer b(t, r, c, group);
        for (int row = 0; row < r; ++row) store_row(values.data() + std::size_t(row) * c, c, b.activation(), row, c);
        return b;
    }
    std::vector<float> values() const {
        std::vector<float> out(std::size_t(rows) * cols);
        for (std::size_t i = 0; i < out.size(); ++i) {
            const std::size_t row = i / cols;
            if (type == Type::f32) out[i] = storage[i];
            if (type == Type::bf16) out[i] = widen_bf16(reinterpret_cast<const std::uint16_t*>(storage.data())[i]);
            if (type == Type::s8)
                out[i] = reinterpret_cast<const std::int8_t*>(storage.data())[i] *
                         scales[group ? row * (cols / group) + i % cols / group : row];
        }
        return out;
    }
};

// Row by row: max|actual − expected| ≤ tolerance × max(1e-3, max|expected| in that row),
// so that rows of very different magnitude are each held to their own scale.
void expect_rows_close(const std::vector<float>& actual, const std::vector<double>& expected, int cols, double rel) {
    ASSERT_EQ(actual.size(), expected.size());
    for (std::size_t r = 0; r < actual.size() / cols; ++r) {
        double max_ref = 1e-3, max_err = 0;
        for (int c = 0; c < cols; ++c) {
            max_ref = std::max(max_ref, std::abs(expected[r * cols + c]));
            max_err = std::max(max_err, std::abs(actual[r * cols + c] - expected[r * cols + c]));
        }
        ASSERT_LE(max_err, rel * max_ref) << "row " << r << ", max |ref| " << max_ref;
    }
}

class PrecisionOps : public OpTest {};

// Rows whose magnitudes span 100×: a per-row scale applied to the wrong row,
// or to the bias, shows in the small rows.
std::vector<float> rows_of_varied_scale(int rows, int cols, unsigned seed) {
    std::vector<float> v = random_vector(std::size_t(rows) * cols, seed);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) v[std::size_t(r) * cols + c] *= std::pow(10.f, float(r % 5) / 2 - 1);
    return v;
}

// rows: 37 — nothing a multiple of a block, several column tiles; or more.
// act_dst: the output type of the layers without a residual (s8 needs whole
// rows: one column tile, so a narrower out).
void check_linear(PrecisionOps& t, Type src_type, double tolerance, int rows = 37, bool with_bias = true,
                  Type act_dst = Type::bf16, int out = 1000) {
    Executor ex(t.engine, t.GetParam());
    const int in = 70;
    Tensor weight({out, in}, 1, 0.1f), bias({out}, 2);
    const std::vector<float> src = rows_of_varied_scale(rows, in, 3);
    for (Epilogue e :
         {Epilogue::none, Epilogue::gelu_erf, Epilogue::gelu_tanh, Epilogue::gelu_quick, Epilogue::residual_add}) {
        const Type dst_type = e == Epilogue::residual_add ? Type::f32 : act_dst;
        auto w = inside(ex, [&] {
            return LinearWeights(ex, t.weight_memory, weight.view, with_bias ? &bias.view : nullptr, e,
                                 {rows, ex.threads()}, {src_type, dst_type});
        });
        Buffer s = Buffer::of(src_type, rows, in, src);
        const std::vector<float> residual = random_vector(rows * out, 4);
        Buffer dst = Buffer::of(dst_type, rows, out, residual);
        std::vector<double> expected(std::size_t(rows) * out);
        for (int r = 0; r < rows; ++r)
            for (int o = 0; o < out; ++o) {
                double acc = with_bias ? bias.view.data[o] : 0.0;
                for (int k = 0; k < in; ++k) acc += double(src[r * in + k]) * weight.view.data[o * in + k];
                if (e == Epilogue::gelu_erf) acc = gelu_erf(acc);
                if (e == Epilogue::gelu_tanh) acc = gelu_tanh(acc);
                if (e == Epilogue::gelu_quick) acc = gelu_quick(acc);
                if (e == Epilogue::residual_add) acc += residual[r * out + o];
                expected[r * out + o] = acc;
            }
        auto op =
            inside(ex, [&] { return make_linear("linear", w, t.engine, rows, s.activation(), dst.activation()); });
        t.run(ex, *op);
        expect_rows_close(dst.values(), expected, out, tolerance);
    }
}

// bf16 inputs and weights (2^-9 each), f32 sums, a bf16 output (2^-9): well under 1 %.
TEST_P(PrecisionOps, LinearAtBf16MatchesNaive) { check_linear(*this, Type::bf16, 1e-2); }

// s8 rows and weights, each within half a step of 1/127 of its row's maximum:
// over 70 random products the error stays within ~1 % of the output's scale.
TEST_P(PrecisionOps, LinearAtInt8MatchesNaive) { check_linear(*this, Type::s8, 3e-2); }

// 700 rows: an int8 row tile of them runs as several row chunks (ops/linear_row_loop.hpp
// keeps each f32 block within the L2), each with its own row loop.
TEST_P(PrecisionOps, LinearAtInt8MatchesNaiveOverRowChunks) { check_linear(*this, Type::s8, 3e-2, 700); }

// Without a bias, which the int8 row loop then adds as zeros.
TEST_P(PrecisionOps, LinearAtInt8WithoutBiasMatchesNaive) { check_linear(*this, Type::s8, 3e-2, 37, false); }

// fc1 at int8 writes its GELU rows as s8 (a row scale from the GELU pass's
// own maximum): another half step, 0.5/127 of the row's maximum.
TEST_P(PrecisionOps, LinearAtInt8WritesS8Rows) {
    check_linear(*this, Type::s8, 3e-2 + 0.5 / 127, 37, true, Type::s8, 96);
}

// qkv at int8 (model/block_types.hpp) writes s8 with a scale per head's q, k
// and v: each group of head_dim columns within half a step of 1/127 of its
// own maximum, on top of the int8 products' error, whatever the column tiles
// (the threads change them). The output columns' magnitudes differ 100× from
// group to group, so a scale taken from or stored to another group shows.
void check_linear_scale_groups(PrecisionOps& t, int group, int out, int rows = 37) {
    Executor ex(t.engine, t.GetParam());
    const int in = 70;
    Tensor weight({out, in}, 1, 0.1f), bias({out}, 2);
    auto* weights = const_cast<float*>(weight.view.data);
    auto* biases = const_cast<float*>(bias.view.data);
    for (int o = 0; o < out; ++o) {
        const float magnitude = std::pow(10.f, float(o / group % 3) - 1);
        for (int k = 0; k < in; ++k) weights[o * in + k] *= magnitude;
        biases[o] *= magnitude;
    }
    const std::vector<float> src = rows_of_varied_scale(rows, in, 3);
    auto w = inside(ex, [&] {
        return LinearWeights(ex, t.weight_memory, weight.view, &bias.view, Epilogue::none, {rows, ex.threads()},
                             {Type::s8, Type::s8});
    });
    Buffer s = Buffer::of(Type::s8, rows, in, src);
    Buffer dst(Type::s8, rows, out, group);
    std::vector<double> expected(std::size_t(rows) * out);
    for (int r = 0; r < rows; ++r)
        for (int o = 0; o < out; ++o) {
            double acc = bias.view.data[o];
            for (int k = 0; k < in; ++k) acc += double(src[r * in + k]) * weight.view.data[o * in + k];
            expected[r * out + o] = acc;
        }
    auto op = inside(ex, [&] { return make_linear("qkv", w, t.engine, rows, s.activation(), dst.activation()); });
    t.run(ex, *op);
    SCOPED_TRACE(testing::Message() << w.column_tiles().size() << " column tiles");
    expect_rows_close(dst.values(), expected, group, 3e-2 + 0.5 / 127);  // each group against its own maximum
}

TEST_P(PrecisionOps, LinearAtInt8WritesS8ScaleGroups) {
    check_linear_scale_groups(*this, 64, 3 * 4 * 64);
    check_linear_scale_groups(*this, 16, 3 * 2 * 16);
    check_linear_scale_groups(*this, 64, 3 * 6 * 64, 700);  // row chunks
}

// A scale group split by a column tile cannot be quantized: the op refuses it
// (5 threads split the groups of 48 here; fewer keep one tile, which it builds).
TEST_P(PrecisionOps, LinearRefusesScaleGroupsAcrossColumnTiles) {
    Executor ex(engine, GetParam());
    const int rows = 37, in = 70, out = 3 * 8 * 48;
    Tensor weight({out, in}, 1, 0.1f), bias({out}, 2);
    auto w = inside(ex, [&] {
        return LinearWeights(ex, weight_memory, weight.view, &bias.view, Epilogue::none, {rows, ex.threads()},
                             {Type::s8, Type::s8});
    });
    const bool splits = std::any_of(w.column_tiles().begin(), w.column_tiles().end(),
                                    [](const LinearWeights::ColumnTile& tile) { return tile.columns.begin % 48 != 0; });
    Buffer s(Type::s8, rows, in), dst(Type::s8, rows, out, 48);
    const auto make = [&] {
        return inside(ex, [&] { return make_linear("qkv", w, engine, rows, s.activation(), dst.activation()); });
    };
    if (splits)
        EXPECT_THROW(make(), std::logic_error);
    else
        EXPECT_NO_THROW(make());  // one tile (fewer threads): every group whole
}

// Widths the AVX-512 rows take (16s, four rows at a time) and one they do not
// (40); 23 rows, so that by thread count a tile ends in a group of 1, 2 or 3
// rows. Every fifth row's mean is 1000 (spread 3): a variance from E[x²] −
// mean² loses it there; the others' mean is 5.
TEST_P(PrecisionOps, LayerNormWritesBf16AndS8) {
    Executor ex(engine, GetParam());
    const int rows = 23;
    const float eps = 1e-6f;
    for (int dim : {40, 48, 192, 384, 768}) {
        Tensor scale({dim}, 8), shift({dim}, 9);
        std::vector<float> src = random_vector(rows * dim, 10, 3.f);
        for (int r = 0; r < rows; ++r)
            for (int i = 0; i < dim; ++i) src[std::size_t(r) * dim + i] += r % 5 == 0 ? 1000.f : 5.f;
        const std::vector<double> expected = naive_layer_norm(src, rows, dim, eps, scale.view.data, shift.view.data);
        // bf16: one rounding (2^-9). s8: half a step, 0.5/127 of the row's maximum.
        for (auto [type, tolerance] : {std::pair{Type::bf16, 4e-3}, std::pair{Type::s8, 0.5 / 127 + 1e-5}}) {
            SCOPED_TRACE(testing::Message() << "dim " << dim << (type == Type::bf16 ? ", bf16" : ", s8"));
            Buffer dst(type, rows, dim);
            auto op = inside(ex, [&] {
                return make_norm("norm", engine, ex.threads(), rows,
                                 {Norm::layer, dim, eps, scale.view.data, shift.view.data}, src.data(),
                                 dst.activation());
            });
            run(ex, *op);
            expect_rows_close(dst.values(), expected, dim, tolerance);
        }
    }
}

// A buffer's bytes as 16-bit words (bf16 values; two s8 each), to compare bit for bit.
std::vector<std::uint16_t> words_of(const Buffer& b) {
    std::vector<std::uint16_t> words(b.storage.size() * 2);
    std::memcpy(words.data(), b.storage.data(), sizeof(float) * b.storage.size());
    return words;
}

// The norm op's bf16 and s8 rows (four at a time by AVX-512 where it runs:
// widths of 16s) are normalize_row's floats stored by store_row. Bit for bit
// in g++'s optimised build; builds that compile the reference otherwise
// (clang, sanitizers: other multiply-add contractions) may round a value one
// step apart. 11 rows: groups of four, then of three or fewer by thread count.
TEST_P(PrecisionOps, LayerNormMatchesNormalizeRowThenStoreRow) {
    Executor ex(engine, GetParam());
    const int rows = 11;
    for (int dim : {20, 192, 200, 256, 384, 768}) {
        Tensor scale({dim}, 11), shift({dim}, 12);
        std::vector<float> src = rows_of_varied_scale(rows, dim, 13);
        const NormParams params{Norm::layer, dim, 1e-6f, scale.view.data, shift.view.data};
        for (Type type : {Type::bf16, Type::s8}) {
            Buffer dst(type, rows, dim), expected(type, rows, dim);
            auto op = inside(ex, [&] {
                return make_norm("norm", engine, ex.threads(), rows, params, src.data(), dst.activation());
            });
            run(ex, *op);
            std::vector<float> row(dim);
            for (int r = 0; r < rows; ++r) {
                normalize_row(params, src.data() + std::size_t(r) * dim, row.data());
                store_row(row.data(), dim, expected.activation(), r, dim);
            }
#if defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
            EXPECT_EQ(words_of(dst), words_of(expected)) << "dim " << dim;  // g++'s optimised build: bit for bit
            EXPECT_EQ(dst.scales, expected.scales) << "dim " << dim;
#endif
            const std::vector<float> want = expected.values();
            // One bf16 step is at most 2^-7 of a value; one s8 step 1/127 of the row's maximum.
            SCOPED_TRACE(testing::Message() << "dim " << dim << (type == Type::bf16 ? ", bf16" : ", s8"));
            expect_rows_close(dst.values(), std::vector<double>(want.begin(), want.end()), dim,
                              type == Type::bf16 ? 1.0 / 128 + 1e-6 : 1.0 / 127 + 1e-5);
            if (type == Type::s8) {
                for (int r = 0; r < rows; ++r) {
                    EXPECT_NEAR(dst.scales[r], expected.scales[r], 1e-6 * expected.scales[r]);
                }
            }
        }
    }
}

// Patch rows as bf16 or s8 (the patch embedding's input at bf16 and int8):
// each the f32 patch stored by store_row, bit for bit. A 3 × 5 grid of
// 16-pixel patches, 2 images: by thread count, tiles start and end inside a
// grid row.
TEST_P(PrecisionOps, PatchExtractionStoresEachPatchByStoreRow) {
    Executor ex(engine, GetParam());
    const PatchGrid g{3, 48, 80, 16};
    const int batch = 2, rows = batch * g.patches();
    const std::vector<float> images =
        random_vector(std::size_t(batch) * g.channels * g.image_height * g.image_width, 17);
    const std::vector<float> patches = naive_patch_rows(images, g, batch);
    for (Type type : {Type::bf16, Type::s8}) {
        SCOPED_TRACE(type == Type::bf16 ? "bf16" : "s8");
        Buffer dst(type, rows, g.patch_dim());
        const Buffer expected = Buffer::of(type, rows, g.patch_dim(), patches);
        ExtractPatches extract(g, split_evenly(rows, ex.threads()), dst.activation());
        extract.set_input(images.data());
        run(ex, extract);
        EXPECT_EQ(words_of(dst), words_of(expected));
        if (type == Type::s8) {
            EXPECT_EQ(dst.scales, expected.scales);
        }
    }
}

// bf16 → s8 a tile at a time: bit for bit store_row's s8 case on the widened rows.
TEST_P(PrecisionOps, ConvertRowsFromBf16IsStoreRowOfTheWidenedRows) {
    Executor ex(engine, GetParam());
    const int rows = 29, cols = 90;
    Buffer src = Buffer::of(Type::bf16, rows, cols, rows_of_varied_scale(rows, cols, 14));
    const std::vector<float> widened = src.values();
    Buffer dst(Type::s8, rows, cols), expected(Type::s8, rows, cols);
    ConvertRows op("convert", ex.threads(), rows, cols, src.activation(), dst.activation());
    run(ex, op);
    for (int r = 0; r < rows; ++r)
        store_row(widened.data() + std::size_t(r) * cols, cols, expected.activation(), r, cols);
    EXPECT_EQ(words_of(dst), words_of(expected));
    EXPECT_EQ(dst.scales, expected.scales);
}

TEST_P(PrecisionOps, ConvertRowsQuantizesEachRowToHalfAStep) {
    Executor ex(engine, GetParam());
    const int rows = 29, cols = 90;
    const std::vector<float> values = rows_of_varied_scale(rows, cols, 5);
    Buffer src = Buffer::of(Type::bf16, rows, cols, values);
    const std::vector<float> rounded = src.values();
    Buffer dst(Type::s8, rows, cols);
    ConvertRows op("convert", ex.threads(), rows, cols, src.activation(), dst.activation());
    run(ex, op);
    expect_rows_close(dst.values(), std::vector<double>(rounded.begin(), rounded.end()), cols, 0.5 / 127 + 1e-6);
}

TEST_P(PrecisionOps, QuantizedWeightsFollowTheSymmetricPerChannelRule) {
    const int out = 5, in = 33;
    std::vector<float> w = random_vector(out * in, 6);
    std::fill(w.begin() + 2 * in, w.begin() + 3 * in, 0.f);  // a zero row gets scale 1, values 0
    const QuantizedWeights q = quantize_per_output_channel(w.data(), out, in);
    for (int o = 0; o < out; ++o) {
        float max_abs = 0;
        for (int k = 0; k < in; ++k) max_abs = std::max(max_abs, std::abs(w[o * in + k]));
        const float scale = max_abs > 0 ? max_abs / 127 : 1.f;
        EXPECT_FLOAT_EQ(q.scales[o], scale);
        for (int k = 0; k < in; ++k) {
            EXPECT_LE(std::abs(q.values[o * in + k]), 127);
            EXPECT_EQ(q.values[o * in + k], std::lrint(w[o * in + k] / scale)) << o << "," << k;
        }
    }
}

// Attention from bf16 qkv rows into a bf16 output, computing in f32, bf16, or
// s8 q kᵀ and u8 · s8 p v — each against the naive loop on the same bf16 values,
// probabilities copied out too (onevit infer --attention).
void check_attention(PrecisionOps& t, AttentionTypes types, double tolerance,
                     const AttentionShape& s = {2, 37, 3, 16, 0.25f}) {
    Executor ex(t.engine, t.GetParam());
    const int I = s.inner(), rows = s.batch * s.tokens;
    const std::vector<float> qkv_values = random_vector(rows * 3 * I, 11);
    Buffer qkv = Buffer::of(Type::bf16, rows, 3 * I, qkv_values);
    const std::vector<float> rounded = qkv.values();
    Buffer out(Type::bf16, rows, I);
    auto attention = inside(ex, [&] {
        return std::make_unique<Attention>(t.engine, ex.threads(), s, qkv.activation(), out.activation(), types);
    });
    const std::int64_t block = std::int64_t(s.heads) * s.tokens * s.tokens;
    std::vector<float> probs(s.batch * block, -1.f);
    const Attention::ProbabilitiesOut where{probs.data(), block};
    attention->copy_probabilities_to(&where);
    t.run(ex, *attention);
    std::vector<double> expected_probs;
    const std::vector<double> expected = naive_attention(rounded, s, &expected_probs);
    expect_close(out.values(), expected, tolerance);
    expect_close(probs, expected_probs, tolerance);
}

// What int8 precision runs where nothing transforms q and k: s8 qkv with a
// scale per head's q, k and v (written by qkv's row loop) read as they are,
// against the naive loop on their values. The (token, head, q/k/v) groups'
// magnitudes differ (up to 2.8× between neighbours), so a scale read for
// another token, head or part shows. head_dim 24: oneDNN's matmuls (ours
// take multiples of 16) from the same s8 rows.
void check_attention_from_s8_heads(PrecisionOps& t, const AttentionShape& s) {
    Executor ex(t.engine, t.GetParam());
    const int I = s.inner(), rows = s.batch * s.tokens;
    std::vector<float> qkv_values = random_vector(rows * 3 * I, 11);
    for (std::size_t i = 0; i < qkv_values.size(); ++i)
        qkv_values[i] *= std::pow(2.f, float(i / s.head_dim % 4) / 2 - 1);
    Buffer qkv = Buffer::of(Type::s8, rows, 3 * I, qkv_values, s.head_dim);
    const std::vector<float> dequantized = qkv.values();
    Buffer out(Type::bf16, rows, I);
    auto attention = inside(ex, [&] {
        return std::make_unique<Attention>(t.engine, ex.threads(), s, qkv.activation(), out.activation(),
                                           AttentionTypes{Type::s8, Type::u8});
    });
    const std::int64_t block = std::int64_t(s.heads) * s.tokens * s.tokens;
    std::vector<float> probs(s.batch * block, -1.f);
    const Attention::ProbabilitiesOut where{probs.data(), block};
    for (bool copy_probabilities : {false, true}) {  // the scaled scores, or the softmax with its copy
        attention->copy_probabilities_to(copy_probabilities ? &where : nullptr);
        t.run(ex, *attention);
        std::vector<double> expected_probs;
        const std::vector<double> expected = naive_attention(dequantized, s, &expected_probs);
        expect_rows_close(out.values(), expected, s.head_dim, 3e-2);  // each head against its own scale
        if (copy_probabilities) expect_close(probs, expected_probs, 3e-2);
    }
}

TEST_P(PrecisionOps, AttentionFromS8HeadsMatchesNaive) {
    check_attention_from_s8_heads(*this, {2, 37, 3, 16, 0.25f});
    check_attention_from_s8_heads(*this, {2, 37, 3, 64, 0.125f});
    check_attention_from_s8_heads(*this, {1, 37, 2, 24, 0.25f});
}

// f32 inside: one bf16 rounding of the output.
TEST_P(PrecisionOps, AttentionFromBf16MatchesNaive) { check_attention(*this, {Type::f32, Type::f32}, 4e-3); }

// What bf16 precision runs (model/block_types.hpp): bf16 q, k, v,
// probabilities and output, a few roundings of 2^-9 each.
TEST_P(PrecisionOps, AttentionAtBf16MatchesNaive) { check_attention(*this, {Type::bf16, Type::bf16}, 2e-2); }

// The same with k and v packed for the matmuls (a head split into 4 query
// parts or more: 1,100 tokens' scores exceed a quarter of any L2 up to 4 MiB
// in 4 parts), attention sharp enough (scale 1) that a key or value out of
// place moves the outputs by O(1).
TEST_P(PrecisionOps, AttentionAtBf16WithPackedKeysMatchesNaive) {
    check_attention(*this, {Type::bf16, Type::bf16}, 2e-2, {1, 1100, 2, 16, 1.f});
}

// f32 q kᵀ with bf16 probabilities and v: the op takes each matmul's type on its own.
TEST_P(PrecisionOps, AttentionWithBf16MixMatchesNaive) { check_attention(*this, {Type::f32, Type::bf16}, 2e-2); }

// s8 q and k rows (half a step of 1/127 of their maximum each) and u8
// probabilities (steps of 1/255 of the row's largest p·|v| scale): within a
// few percent of the output's scale, as int8 linear layers are.
TEST_P(PrecisionOps, AttentionAtInt8MatchesNaive) { check_attention(*this, {Type::s8, Type::u8}, 3e-2); }

INSTANTIATE_TEST_SUITE_P(Threads, PrecisionOps, ::testing::Values(1, 2, 3, 5));

}  // namespace
}  // namespace onevit
