// Normalisation over the last dimension of a rows × dim matrix, in row tiles:
// LayerNorm ((x − mean) / sqrt(var + eps) · scale + shift) or RMSNorm
// (x / sqrt(mean(x²) + eps) · scale). An f32 LayerNorm runs oneDNN's
// layer_normalization; the rest is a loop of ours (oneDNN 2.6's LayerNorm
// writes only its source's data type, and has no RMSNorm): f32 statistics,
// then the row stored as dst's type — bf16, or s8 quantized with its row
// scale — in the same pass.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "onevit/model_info.hpp"
#include "ops/activation.hpp"
#include "ops/op.hpp"

namespace onevit {

struct NormParams {
    Norm kind = Norm::layer;
    int dim = 0;
    float eps = 0.f;
    const float* scale = nullptr;  // [dim], read in place from the mapped file
    const float* shift = nullptr;  // [dim]; none for RMSNorm
};

// src (f32) and dst are rows × dim, dense; they may be the same buffer if dst is f32.
// accumulate: dst (f32) += norm(src) — a residual post-norm.
std::unique_ptr<Op> make_norm(std::string name, const dnnl::engine& engine, int threads, int rows,
                              const NormParams& params, const float* src, Activation dst, bool accumulate = false);

// Creates and checks (ops/kernel_check.hpp) the descriptors such an op would create.
void plan_norm(const dnnl::engine& engine, int threads, int rows, const NormParams& params, Activation::Type dst);

// y = norm(x) for one row of dim floats (y may be x).
void normalize_row(const NormParams& params, const float* x, float* y);

}  // namespace onevit
