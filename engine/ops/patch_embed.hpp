// Patch embedding: a convolution with kernel = stride = patch size, split by
// image and by rows of the patch grid into tiles, each a single-threaded oneDNN
// convolution.
//
// The convolution runs channels-last (NHWC in and out): oneDNN 2.6 then uses
// its brgemm convolution (~110 GFLOP/s per core here), where NCHW gets gemm:jit
// (~80, plus ~30 ms of kernel generation on the first call in a process). A
// band of grid rows is then a dense NHWC image of its own, in and out, and its
// output is simply the patch-token rows (patches × dim). The NCHW input is
// reordered band by band into NHWC by the same task that convolves the band.
#pragma once

#include <vector>

#include "aligned_buffer.hpp"
#include "executor.hpp"
#include "model_file.hpp"
#include "ops/patch_grid.hpp"
#include "ops/step.hpp"

namespace onevit {

class PatchEmbedWeights {
public:
    // weight: [dim, channels, patch, patch]; bias: [dim].
    PatchEmbedWeights(Executor& executor, const PatchGrid& grid, const TensorView& weight, const TensorView& bias);

private:
    friend class PatchEmbedSteps;
    dnnl::convolution_forward::primitive_desc primitive_desc(const dnnl::engine& engine, int grid_rows,
                                                             const dnnl::memory::desc& weights_md) const;
    PatchGrid grid_;
    int dim_ = 0;
    dnnl::memory weights_;  // in the layout the convolution prefers
    dnnl::memory bias_;     // a view of the file
};

class PatchEmbedSteps {
public:
    // out: batch × patches × dim, the patch-token rows of every image.
    PatchEmbedSteps(const PatchEmbedWeights& weights, const dnnl::engine& engine, int threads, int batch, float* out);

    // Inside Executor::run. input: batch × C × H × W (NCHW).
    void run(Executor& executor, const float* input, std::vector<dnnl::memory>& scratchpads);
    std::size_t scratchpad_bytes() const { return scratchpad_bytes_; }

private:
    struct Band {
        Step to_nhwc;  // reorder of the band's input rows, NCHW → NHWC
        Step convolution;
        std::int64_t input_offset;  // of the band's first element in the NCHW input
    };
    std::int64_t image_elements_ = 0;
    AlignedBuffer nhwc_;  // the input, channels-last
    std::vector<Band> bands_;
    std::size_t scratchpad_bytes_ = 0;
};

}  // namespace onevit
