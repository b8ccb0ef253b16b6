// GELU over a row of floats, for the epilogues oneDNN cannot fuse or fuses
// slowly: at int8 a matmul's per-row activation scale must be applied before
// the GELU, and oneDNN 2.6's brgemm takes a per-row multiply only in a 3-D
// matmul with plain weights (ops/linear.hpp); at bf16 its GELU-erf post-op
// costs twice this loop (docs/performance.md). So those layers apply scale,
// bias and GELU in a row loop of their own.
//
// Vectorised float code (ops/vector_math.hpp), each within 4e-7 · max(1, |x|)
// of the exact function.
#pragma once

#include "onevit/model_info.hpp"

namespace onevit {

// values[i] = gelu(values[i] · scale + bias[i]), in place: an int8 matmul's
// row, its activation scale and the layer's bias. Returns the largest
// |values[i]| after (NaN if a value is NaN), for an s8 store's row scale.
float apply_gelu(Gelu gelu, float* values, int n, float scale, const float* bias);

}  // namespace onevit
