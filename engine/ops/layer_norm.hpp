// LayerNorm over the last dimension of a rows × dim matrix (oneDNN
// layer_normalization with separate scale and shift), split into row tiles.
#pragma once

#include <vector>

#include "ops/step.hpp"

namespace onevit {

class LayerNormSteps : public StepList {
public:
    struct Tile {
        Range rows;
        dnnl::layer_normalization_forward::primitive_desc pd;
    };
    // The row tiles LayerNormSteps runs, every descriptor checked (ops/kernel_check.hpp).
    static std::vector<Tile> plan(const dnnl::engine& engine, int threads, int rows, int dim, float eps);

    // scale, shift: [dim], read-only (they live in the mapped model file).
    // src and dst are rows × dim, dense; they may be the same buffer.
    LayerNormSteps(const dnnl::engine& engine, int threads, int rows, int dim, float eps, const float* scale,
                   const float* shift, float* src, float* dst);
};

}  // namespace onevit
