// GELU over a row of floats, for the epilogues oneDNN cannot fuse or fuses
// slowly: at int8 a matmul's per-row activation scale must be applied before
// the GELU, and oneDNN 2.6's brgemm takes a per-row multiply only in a 3-D
// matmul with plain weights (ops/linear.hpp); at f32 and bf16 its GELU-erf
// post-op costs twice this loop (docs/performance.md). So those layers apply scale,
// bias and GELU in a row loop of their own.
//
// Vectorised float code (ops/vector_math.hpp), each within 4e-7 · max(1, |x|)
// of the exact function.
#pragma once

#include <cstdint>

#include "onevit/model_info.hpp"
#include "ops/bf16_store.hpp"  // cpu_rounds_to_bf16

namespace onevit {

// values[i] = gelu(values[i] · scale + bias[i]), in place: an int8 matmul's
// row, its activation scale and the layer's bias. Returns the largest
// |values[i]| after (NaN if a value is NaN), for an s8 store's row scale.
float apply_gelu(Gelu gelu, float* values, int n, float scale, const float* bias);

// out[i] = gelu(values[i] · scale + bias[i]), the same values as apply_gelu's,
// into another row (an f32 layer's output: no copy after the GELU).
void apply_gelu_into(Gelu gelu, const float* values, int n, float scale, const float* bias, float* out);

// out[i] = gelu(values[i] · scale + bias[i]) rounded to bf16 (nearest even;
// a NaN stays NaN; a result below bf16's normal range, |x| < 1.2e-38, is 0):
// apply_gelu and a bf16 store in one pass, only where cpu_rounds_to_bf16()
// (in software the rounding costs as much as its own pass).
void apply_gelu_to_bf16(Gelu gelu, const float* values, int n, float scale, const float* bias, std::uint16_t* out);

}  // namespace onevit
