// A fully connected layer as an op: y = x Wᵀ + b with its epilogue, over the
// tiles of its weights' grid (ops/linear_weights.hpp). Two implementations
// behind one interface:
//   FloatLinear (f32, bf16 without a GELU): oneDNN's fused post-ops (bias,
//   residual sum, tanh);
//   RowLoopLinear (int8, and every layer with a GELU): s8 · s8 (f32, bf16)
//   matmuls with only the weight scales fused, each row chunk's f32 block
//   then finished by a row loop of ours (row scale, bias, GELU, and the
//   store, quantization or residual add).
#pragma once

#include <memory>
#include <string>

#include "ops/activation.hpp"
#include "ops/linear_weights.hpp"
#include "ops/op.hpp"

namespace onevit {

// src: rows × in_features; dst: rows × out_features, both dense, of the
// weights' LinearTypes (at int8 src carries row scales; dst may be f32 — the
// residual for residual_add —, bf16, or, for a single column tile, s8). For
// residual_add, dst already holds the residual.
std::unique_ptr<Op> make_linear(std::string name, const LinearWeights& weights, const dnnl::engine& engine, int rows,
                                Activation src, Activation dst);

// Creates and checks (ops/kernel_check.hpp) every descriptor such an op would
// create for this many rows; needs no weights or activations.
void plan_linear(const LinearWeights& weights, const dnnl::engine& engine, int rows);

}  // namespace onevit
