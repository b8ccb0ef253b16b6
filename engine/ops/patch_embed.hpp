// Patch embedding: a convolution with kernel = stride = patch size, which is
// the matmul of the flattened patches [patches, C·P·P] by the weight read as
// [dim, C·P·P] (the same products, summed in another order). It runs as two
// ops — cutting the patches out of the NCHW input (ops/patch_extract.hpp),
// then that matmul (ops/linear.hpp) — which chain row tile by row tile where
// the matmul is split into row tiles: each task cuts out its own patches and
// multiplies them. oneDNN's own convolution falls to its reference kernel
// for small bands of patches, where brgemm takes any row count (docs/design.md).
#pragma once

#include <memory>
#include <vector>

#include "format/model_file.hpp"
#include "ops/linear.hpp"
#include "ops/patch_grid.hpp"
#include "runtime/aligned_buffer.hpp"
#include "runtime/executor.hpp"
#include "runtime/weight_memory.hpp"

namespace onevit {

class PatchEmbedWeights {
public:
    // weight: [dim, channels, patch, patch]; bias: [dim] or null. Reordered on
    // loader's threads into memory, for executors of run_threads threads.
    // type: of the patches and the weights, f32 or bf16 (f32 sums and output either way).
    PatchEmbedWeights(Executor& loader, WeightMemory& memory, const PatchGrid& grid, const TensorView& weight,
                      const TensorView* bias, int run_threads, Activation::Type type = Activation::Type::f32);
    // The plan only, no weights.
    PatchEmbedWeights(const dnnl::engine& engine, const PatchGrid& grid, int dim, bool bias, int run_threads,
                      Activation::Type type = Activation::Type::f32);

    const PatchGrid& grid() const { return grid_; }
    const LinearWeights& linear() const { return linear_; }

private:
    PatchGrid grid_;
    LinearWeights linear_;  // [dim, C·P·P]
};

// Cuts each task's patch rows out of the input images, as the patches' type.
class ExtractPatches : public Op {
public:
    // rows: (batch · patches) × patch_dim; tiles: the rows of each task.
    ExtractPatches(const PatchGrid& grid, std::vector<Range> tiles, Activation rows);
    void set_input(const float* images) { images_ = images; }

    void run(int task, TaskContext& context) override;

private:
    PatchGrid grid_;
    Activation rows_;
    const float* images_ = nullptr;
};

// The two ops of one batch's patch embedding, and the patch rows between them.
struct PatchEmbedding {
    PatchEmbedding(const PatchEmbedWeights& weights, const dnnl::engine& engine, int threads, int batch, float* out);
    // Creates and checks the descriptors, without buffers (ops/kernel_check.hpp).
    static void plan(const PatchEmbedWeights& weights, const dnnl::engine& engine, int batch);

    AlignedBuffer rows;  // the flattened patches, (image, patch) × C·P·P
    std::unique_ptr<Op> linear;
    std::unique_ptr<ExtractPatches> extract;
};

}  // namespace onevit
