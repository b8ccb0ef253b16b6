// A fully connected layer, y = x Wᵀ + b with a fused epilogue, as a grid of
// single-threaded oneDNN matmuls over (row tiles × column tiles).
//
// LinearWeights is shared by every batch size: the columns are split into
// tiles once, from the output width and the thread count, and each tile is
// reordered once into the blocked layout oneDNN's matmul prefers.
// LinearSteps binds those weights to one batch's activation buffers.
#pragma once

#include <vector>

#include "executor.hpp"
#include "model_file.hpp"
#include "ops/step.hpp"
#include "weight_memory.hpp"

namespace onevit {

// gelu_quick: x·sigmoid(1.702x), which is oneDNN's swish with alpha 1.702.
enum class Epilogue { none, gelu_erf, gelu_tanh, gelu_quick, residual_add };

// What a layer's column tiles and weight layout are chosen for: the row count
// it typically multiplies, and the threads of each executor that will run it.
struct LinearTuning {
    int rows = 1;
    int threads = 1;
};

class LinearWeights {
public:
    // weight: [out, in] (PyTorch order); bias: [out] or nullptr. The weights are
    // reordered on loader's threads into memory.
    LinearWeights(Executor& loader, WeightMemory& memory, const TensorView& weight, const TensorView* bias,
                  Epilogue epilogue, LinearTuning tuning);

    int in_features() const { return in_; }
    int out_features() const { return out_; }

private:
    friend class LinearSteps;
    struct ColumnTile {
        Range columns;
        dnnl::memory::desc weights_md;  // the reordered layout
        dnnl::memory weights;
        dnnl::memory bias;  // empty without bias
    };
    dnnl::primitive_attr attr() const;
    dnnl::matmul::primitive_desc primitive_desc(const dnnl::engine& engine, int rows, Range columns,
                                                const dnnl::memory::desc& weights_md) const;

    int in_ = 0;
    int out_ = 0;
    bool has_bias_ = false;
    Epilogue epilogue_ = Epilogue::none;
    int threads_ = 1;
    std::vector<ColumnTile> tiles_;
};

class LinearSteps : public StepList {
public:
    // src: rows × in_features; dst: rows × out_features, both dense (the
    // weights' layout was chosen for exactly these strides). For residual_add,
    // dst already holds the residual.
    LinearSteps(const LinearWeights& weights, const dnnl::engine& engine, int rows, const float* src, float* dst);
};

}  // namespace onevit
