// Patch embedding: a convolution with kernel = stride = patch size, split by
// output channels into tiles (and by image), each tile a single-threaded
// oneDNN convolution. NCHW in and out is the layout oneDNN 2.6 runs with a
// jit kernel for an NCHW input (NHWC output would fall to the reference one);
// gather() turns the channel-major output back into token rows.
#pragma once

#include <vector>

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
    struct ChannelTile {
        Range channels;
        dnnl::convolution_forward::primitive_desc pd;
        dnnl::memory weights;
        dnnl::memory bias;
    };
    PatchGrid grid_;
    std::vector<ChannelTile> tiles_;
};

class PatchEmbedSteps : public StepList {
public:
    // out: batch × patches × dim floats of scratch, in the steps' own layout.
    PatchEmbedSteps(const PatchEmbedWeights& weights, const dnnl::engine& engine, int batch, float* out);

    // Points the steps at this run's input, batch × C × H × W.
    void bind_input(const float* input);
    // After the steps ran: the dim channels of one patch of one image.
    void gather(int image, int patch, float* dst) const;

private:
    const PatchEmbedWeights& weights_;
    int batch_;
    const float* out_;
    std::vector<std::pair<dnnl::memory, int>> inputs_;  // (memory, image index) per step
    std::int64_t image_elements_ = 0;
};

}  // namespace onevit
