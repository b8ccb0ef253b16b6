// GELU over a row of floats, for the epilogues oneDNN cannot fuse: at int8 a
// matmul's per-row activation scale must be applied before the GELU, and
// oneDNN 2.6's brgemm takes a per-row multiply only in a 3-D matmul with
// plain weights (ops/linear.hpp), so int8 layers apply scale, bias and GELU
// in a row loop of their own.
//
// Vectorised float code, each within ~2e-7 relative of the exact function:
// erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), exp by 2^k · a
// degree-6 polynomial on [-ln2/2, ln2/2].
#pragma once

#include "onevit/model_info.hpp"

namespace onevit {

// values[i] = gelu(values[i]), in place.
void apply_gelu(Gelu gelu, float* values, int n);

}  // namespace onevit
