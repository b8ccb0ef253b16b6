// Data-type conversions of bf16 and int8 precision, written here where oneDNN
// 2.6 has no primitive for them: weights quantized per output channel at load,
// and activation rows quantized at run time (dynamic, one scale per row).
//
// int8 is symmetric: scale = max|x| / 127, q = round(x / scale) in [-127, 127]
// (a zero row gets scale 1). Per row, not per tensor: a row's scale needs only
// that row, so quantizing fuses into the row tiles of the op that produces it
// (no barrier for a tensor-wide maximum), and one outlier token does not
// coarsen every other token's steps.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/activation.hpp"
#include "runtime/sanitizers.hpp"

// The row loops here are compiled for AVX-512 and AVX2 as well as the baseline
// (the build targets plain x86-64), picked at load time by the CPU: they run
// once per activation element, and vectorised they cost a fraction of the
// matmul that follows (a baseline build of the bf16 → s8 pass took ~10 % of
// an int8 ViT-B forward). target_clones are GNU ifuncs, whose resolvers run
// during relocation, before ThreadSanitizer's runtime exists, and crash in its
// instrumentation: TSan builds get the baseline loops only.
#ifdef ONEVIT_TSAN
#define ONEVIT_VECTOR_CLONES
#else
#define ONEVIT_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif

namespace onevit {

// Stage one of int8 weight preparation: [out, in] f32 → s8 [out, in] and one
// scale per output row. (Stage two, the reorder into the matmul's layout, is
// LinearWeights'; an s8 tensor read from a file would enter there.)
struct QuantizedWeights {
    std::vector<std::int8_t> values;  // [out, in]
    std::vector<float> scales;        // [out]
};
QuantizedWeights quantize_per_output_channel(const float* weight, int out, int in);

// Sums (ops/vector_math.hpp's lane_sum) and max |x| of n floats, vectorised.
float sum_of(const float* values, int n);
float sum_of_squares(const float* values, int n);
float max_abs_of(const float* values, int n);

// Writes one row of n floats, times scale (> 0), as dst's type, from this
// column on: f32, bf16, or s8 with its row scale (whole rows only: column 0,
// n = the row's width) or its scale groups' scales (whole groups only).
void store_row(const float* values, int n, const Activation& dst, std::int64_t row, std::int64_t stride,
               std::int64_t column = 0, float scale = 1.f);

// Rows of n bf16 values, stride apart, to dense s8 rows and their scales:
// store_row's s8 case without an f32 row in between (attention's copies of
// q, k and v at int8).
void quantize_bf16_rows(const std::uint16_t* values, std::int64_t stride, int rows, int n, std::int8_t* q,
                        float* scales);

// values · scale + bias (n values, a multiple of group) as s8 per group of
// `group` values, each group's scale in scales[g]: store_row's scale-group
// case fused with the pass before it (qkv's row loop at int8). values is
// left holding values · scale + bias.
void scale_add_bias_and_quantize_groups(float* values, int n, float scale, const float* bias, int group, std::int8_t* q,
                                        float* scales);

// Reads one row of src (f32 or bf16) as floats.
void load_row(const Activation& src, std::int64_t row, std::int64_t stride, int n, float* values);

}  // namespace onevit
