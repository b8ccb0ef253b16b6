// Patch embedding: a convolution with kernel = stride = patch size, which is
// the matmul of the flattened patches [patches, C·P·P] by the weight read as
// [dim, C·P·P] (the same products, summed in another order). It runs as that
// matmul (ops/linear): each row tile first cuts its own patches out of the NCHW
// input (ops/patch_extract), then multiplies them, in one task.
//
// Why not oneDNN's convolution: measured single-threaded here (oneDNN 2.6.3,
// f32, AVX-512), extraction + brgemm matmul runs as fast as the brgconv
// convolution of an NHWC band (which needs its own NCHW → NHWC copy of the
// input) at bands of 1–14 grid rows for ViT-Ti and ViT-B, patch 16 and 32
// (within ±10 %, either way); but the convolution's small bands fall to
// `ref:any` (170–330 ms per band, reference-facts §4.10), while brgemm takes
// any row count.
#pragma once

#include <vector>

#include "runtime/aligned_buffer.hpp"
#include "runtime/executor.hpp"
#include "format/model_file.hpp"
#include "ops/linear.hpp"
#include "ops/patch_grid.hpp"
#include "ops/step.hpp"
#include "runtime/weight_memory.hpp"

namespace onevit {

class PatchEmbedWeights {
public:
    // weight: [dim, channels, patch, patch]; bias: [dim]. Reordered on loader's
    // threads into memory, for executors of run_threads threads. type: of the
    // patches and the weights, f32 or bf16 (f32 sums and output either way).
    PatchEmbedWeights(Executor& loader, WeightMemory& memory, const PatchGrid& grid, const TensorView& weight,
                      const TensorView& bias, int run_threads, Activation::Type type = Activation::Type::f32);
    // The plan only, no weights (for PatchEmbedSteps::plan).
    PatchEmbedWeights(const dnnl::engine& engine, const PatchGrid& grid, int dim, int run_threads,
                      Activation::Type type = Activation::Type::f32);

private:
    friend class PatchEmbedSteps;
    PatchGrid grid_;
    LinearWeights linear_;  // [dim, C·P·P]
};

class PatchEmbedSteps {
public:
    // out: batch × patches × dim, the patch-token rows of every image.
    PatchEmbedSteps(const PatchEmbedWeights& weights, const dnnl::engine& engine, int batch, float* out);
    // Creates and checks the descriptors, without buffers (ops/kernel_check.hpp).
    static void plan(const PatchEmbedWeights& weights, const dnnl::engine& engine, int batch);

    // Inside Executor::run. input: batch × C × H × W (NCHW).
    void run(Executor& executor, const float* input, std::vector<dnnl::memory>& scratchpads);
    std::size_t scratchpad_bytes() const { return linear_.scratchpad_bytes(); }

private:
    PatchGrid grid_;
    int batch_;
    AlignedBuffer rows_;  // the flattened patches, (image, patch) × C·P·P
    Activation patches_;  // rows_ as the weights' type
    LinearSteps linear_;
};

}  // namespace onevit
