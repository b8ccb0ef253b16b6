// Rotary position embedding of one head's row (q or k of one token), in
// place: x'[j] = x[j]·cos[j] + r(x)[j]·sin[j], where r pairs the values —
// (2i, 2i+1) interleaved, or (i, i + n/2) rotate_half — as r(x) = (−x_b, x_a)
// for each pair (a, b). cos and sin are the token's rows of the model's
// tables (weights/FORMAT.md, feature "rope").
#pragma once

#include "onevit/model_info.hpp"

namespace onevit {

void rotate_row(Rope layout, float* x, const float* cos, const float* sin, int n);

}  // namespace onevit
