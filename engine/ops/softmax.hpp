// Softmax over each row of a scores matrix, in f32, by a loop of ours
// (vectorised, ops/vector_math.hpp's exp): oneDNN 2.6's softmax costs several
// times as much on attention's short rows (docs/performance.md).
#pragma once

#include <cstdint>

#include "ops/activation.hpp"

namespace onevit {

// probabilities row r = softmax(scores row r + bias row r), stored as
// probabilities' type (f32, or bf16 from exponentials to bf16's precision,
// ops/vector_math.hpp's exp_for_bf16); scores is overwritten (with the
// exponentials), and may be probabilities itself at f32. All rows × cols,
// dense; bias may be null (none).
void softmax_rows(float* scores, int rows, int cols, const Activation& probabilities, const float* bias = nullptr);
// f32 attention's softmax from the scaled scores (no bias) and their 16 lane
// maxima a row, as ops/f32_products.hpp's kernel writes them, in one pass a
// row, in place: each probability is scores[r][j] (now e^(x − max), as
// ops/vector_math.hpp's exp_of) times inverse_sums[r] (1 / Σ e), which p v
// applies to its output row instead of to every probability. Only where that
// kernel runs (the CPU has AVX-512).
void softmax_rows_f32_from_scores(float* scores, int rows, int cols, const float* lane_maxima, float* inverse_sums);
// bf16 attention's softmax from the scaled scores (no bias) and their 16
// lane maxima a row, as ops/bf16_products.hpp's kernel writes them, in one
// pass a row: each probability is exponentials[r][j] (e^(x − max) to bf16)
// times inverse_sums[r] (1 / Σ e, from the f32 e), which p v applies to its
// output row instead of to every probability. Only where that kernel runs
// (the CPU has AVX512_BF16).
void softmax_rows_bf16_from_scores(const float* scores, int rows, int cols, const float* lane_maxima,
                                   std::uint16_t* exponentials, float* inverse_sums);

// int8 attention's softmax. Row r's scores are products[r][j] · q_scales[r] ·
// scale · k_scales[j] (k_scales null: 1) + bias[r][j] (bias null: 0). Its
// probabilities p (from exponentials to bf16's precision, ample for the u8
// steps) are multiplied by v's row scales v_scales[j] and quantized
// to u8 per row — p[r][j] · v[j] = p_scales[r] · u8[r][j] · v_s8[j] — so p v
// runs as u8 · s8. products is overwritten; probabilities (rows × cols), if
// not null, gets p itself.
void softmax_rows_u8(float* products, int rows, int cols, const float* q_scales, float scale, const float* k_scales,
                     const float* bias, const float* v_scales, std::uint8_t* u8, float* p_scales, float* probabilities);
// The same from the scores (no bias) and their 16 lane maxima a row, as
// ops/int8_products.hpp's kernel writes them: its first pass done. Only
// where that kernel runs (the CPU has AVX-512), and probabilities null.
void softmax_rows_u8_from_scores(float* scores, int rows, int cols, const float* lane_maxima, const float* v_scales,
                                 std::uint8_t* u8, float* p_scales);

// softmax_rows_u8 without the AVX-512 kernel that it runs where the CPU
// has it (and probabilities is null): what other CPUs run, for the tests.
void softmax_rows_u8_portable(float* products, int rows, int cols, const float* q_scales, float scale,
                              const float* k_scales, const float* bias, const float* v_scales, std::uint8_t* u8,
                              float* p_scales, float* probabilities);

}  // namespace onevit
