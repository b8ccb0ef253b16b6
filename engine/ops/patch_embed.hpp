// Patch embedding: a convolution with kernel = stride = patch size, split by
// output channels into tiles (and by image), each tile a single-threaded
// oneDNN convolution. NCHW in and out is the layout oneDNN 2.6 runs with a
// jit kernel for an NCHW input (NHWC output would fall to the reference one);
// gather() turns the channel-major output back into token rows.
#pragma once

#include <vector>

#include "executor.hpp"
#include "model_file.hpp"
#include "ops/step.hpp"

namespace onevit {

struct PatchEmbedShape {
    int channels = 0;
    int image_height = 0;
    int image_width = 0;
    int patch = 0;
    int dim = 0;
    int grid_height() const { return image_height / patch; }
    int grid_width() const { return image_width / patch; }
    int patches() const { return grid_height() * grid_width(); }
};

class PatchEmbedWeights {
public:
    // weight: [dim, channels, patch, patch]; bias: [dim].
    PatchEmbedWeights(Executor& executor, const PatchEmbedShape& shape, const TensorView& weight,
                      const TensorView& bias);
    const PatchEmbedShape& shape() const { return shape_; }

private:
    friend class PatchEmbedSteps;
    struct ChannelTile {
        Range channels;
        dnnl::convolution_forward::primitive_desc pd;
        dnnl::memory weights;
        dnnl::memory bias;
    };
    PatchEmbedShape shape_;
    std::vector<ChannelTile> tiles_;
};

class PatchEmbedSteps {
public:
    // out: batch × patches × dim floats of scratch, in the steps' own layout.
    PatchEmbedSteps(const PatchEmbedWeights& weights, const dnnl::engine& engine, int batch, float* out);

    // Points the steps at this run's input, batch × C × H × W.
    void bind_input(const float* input);
    std::vector<Step>& steps() { return steps_; }
    std::size_t scratchpad_bytes() const { return scratchpad_bytes_; }
    // After the steps ran: the dim channels of one patch of one image.
    void gather(int image, int patch, float* dst) const;

private:
    const PatchEmbedWeights& weights_;
    int batch_;
    const float* out_;
    std::vector<Step> steps_;
    std::vector<std::pair<dnnl::memory, int>> inputs_;  // (memory, image index) per step
    std::int64_t image_elements_ = 0;
    std::size_t scratchpad_bytes_ = 0;
};

}  // namespace onevit
