// Softmax over each row of a scores matrix, in f32, by a loop of ours
// (vectorised, ops/vector_math.hpp's exp): oneDNN 2.6's softmax costs several
// times as much on attention's short rows (docs/performance.md).
#pragma once

#include "ops/activation.hpp"

namespace onevit {

// probabilities row r = softmax(scores row r + bias row r), stored as
// probabilities' type (f32 or bf16); scores is overwritten (with the
// exponentials), and may be probabilities itself at f32. All rows × cols,
// dense; bias may be null (none).
void softmax_rows(float* scores, int rows, int cols, const Activation& probabilities, const float* bias = nullptr);

}  // namespace onevit
