// Softmax over each row of a scores matrix, in f32, by a loop of ours: for
// attention's 197-wide rows oneDNN 2.6's softmax (jit:avx512_core) took
// ~0.76 ns per value on one Zen 4 core, a tenth of an int8 ViT-Ti's forward;
// this loop (ops/vector_math.hpp's exp) takes a fraction of that.
#pragma once

#include "ops/activation.hpp"

namespace onevit {

// probabilities row r = softmax(scores row r), stored as probabilities' type
// (f32 or bf16); scores is overwritten (with the exponentials), and may be
// probabilities itself at f32. Both rows × cols, dense.
void softmax_rows(float* scores, int rows, int cols, const Activation& probabilities);

}  // namespace onevit
