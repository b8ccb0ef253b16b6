// LayerNorm over the last dimension of a rows × dim matrix (oneDNN
// layer_normalization with separate scale and shift), split into row tiles.
// oneDNN 2.6's layer_normalization writes its source's data type only, so a
// bf16 or s8 destination (the next matmul's input at bf16/int8 precision) is
// written by a loop here instead: f32 statistics, then the row stored as bf16,
// or quantized to s8 with its row scale, in the same pass.
#pragma once

#include <vector>

#include "ops/activation.hpp"
#include "ops/step.hpp"

namespace onevit {

class LayerNormSteps : public StepList {
public:
    struct Tile {
        Range rows;
        dnnl::layer_normalization_forward::primitive_desc pd;
    };
    // The row tiles LayerNormSteps runs into an f32 dst, every descriptor
    // checked (ops/kernel_check.hpp); into bf16/s8 it runs the same row tiles
    // as loops, no primitive.
    static std::vector<Tile> plan(const dnnl::engine& engine, int threads, int rows, int dim, float eps);

    // scale, shift: [dim], read-only (they live in the mapped model file).
    // src (f32) and dst are rows × dim, dense; they may be the same buffer if dst is f32.
    LayerNormSteps(const dnnl::engine& engine, int threads, int rows, int dim, float eps, const float* scale,
                   const float* shift, float* src, Activation dst);
};

}  // namespace onevit
