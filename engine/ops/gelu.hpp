// GELU over a row of floats, for the epilogues oneDNN cannot fuse: at int8 a
// matmul's per-row activation scale must be applied before the GELU, and
// oneDNN 2.6's brgemm takes a per-row multiply only in a 3-D matmul with
// plain weights (ops/linear.hpp), so int8 layers apply scale, bias and GELU
// in a row loop of their own.
//
// Vectorised float code (ops/vector_math.hpp), each within 4e-7 · max(1, |x|)
// of the exact function.
#pragma once

#include "onevit/model_info.hpp"

namespace onevit {

// values[i] = gelu(values[i] · scale + bias[i]), in place: an int8 matmul's
// row, its activation scale and the layer's bias.
void apply_gelu(Gelu gelu, float* values, int n, float scale, const float* bias);

}  // namespace onevit
