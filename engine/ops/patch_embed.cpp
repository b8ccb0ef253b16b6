#include "ops/patch_embed.hpp"

namespace onevit {

namespace {

using dnnl::memory;

dnnl::convolution_forward::primitive_desc conv_pd(const dnnl::engine& engine, const PatchGrid& s,
                                                  int out_channels) {
    const memory::desc src({1, s.channels, s.image_height, s.image_width}, memory::data_type::f32,
                           memory::format_tag::nchw);
    const memory::desc weights({out_channels, s.channels, s.patch, s.patch}, memory::data_type::f32,
                               memory::format_tag::any);
    const memory::desc bias({out_channels}, memory::data_type::f32, memory::format_tag::x);
    const memory::desc dst({1, out_channels, s.grid_height(), s.grid_width()}, memory::data_type::f32,
                           memory::format_tag::nchw);
    const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                               dnnl::algorithm::convolution_direct, src, weights, bias, dst,
                                               {s.patch, s.patch}, {0, 0}, {0, 0});
    return dnnl::convolution_forward::primitive_desc(desc, user_scratchpad_attr(), engine);
}

}  // namespace

PatchEmbedWeights::PatchEmbedWeights(Executor& executor, const PatchGrid& grid, const TensorView& weight,
                                     const TensorView& bias)
    : grid_(grid) {
    const int dim = static_cast<int>(weight.dims[0]);
    const dnnl::engine& engine = executor.engine();
    // Tiles of output channels let a single image use every thread.
    const int tiles = std::min(executor.threads(), std::max(1, dim / 32));
    const std::int64_t kernel_elements = std::int64_t(grid.patch_dim());
    for (Range channels : split_evenly(dim, tiles)) {
        ChannelTile tile{channels, conv_pd(engine, grid, channels.size), {}, {}};
        tile.weights = memory(tile.pd.weights_desc(), engine);
        tile.bias = memory(tile.pd.bias_desc(), engine, const_cast<float*>(bias.data + channels.begin));
        tiles_.push_back(std::move(tile));
    }
    executor.run([&] {
        executor.parallel(static_cast<int>(tiles_.size()), [&](int t) {
            ChannelTile& tile = tiles_[t];
            const memory::desc oihw({tile.channels.size, grid.channels, grid.patch, grid.patch},
                                    memory::data_type::f32, memory::format_tag::oihw);
            memory source(oihw, engine, const_cast<float*>(weight.data + tile.channels.begin * kernel_elements));
            dnnl::reorder(source, tile.weights).execute(executor.stream(), source, tile.weights);
        });
    });
}

// Channel tile [c0, c0 + w) of image b: w × patches floats at out + (batch·c0 + b·w)·patches.
PatchEmbedSteps::PatchEmbedSteps(const PatchEmbedWeights& w, const dnnl::engine& engine, int batch, float* out)
    : weights_(w), batch_(batch), out_(out) {
    const PatchGrid& s = w.grid_;
    image_elements_ = std::int64_t(s.channels) * s.image_height * s.image_width;
    for (const auto& tile : w.tiles_) {
        float* tile_out = out + std::int64_t(batch) * s.patches() * tile.channels.begin;
        for (int b = 0; b < batch; ++b) {
            Step step{dnnl::convolution_forward(tile.pd), {}};
            const memory src(tile.pd.src_desc(), engine, nullptr);
            step.args[DNNL_ARG_SRC] = src;
            step.args[DNNL_ARG_WEIGHTS] = tile.weights;
            step.args[DNNL_ARG_BIAS] = tile.bias;
            step.args[DNNL_ARG_DST] =
                memory(tile.pd.dst_desc(), engine, tile_out + std::int64_t(b) * s.patches() * tile.channels.size);
            add(std::move(step), tile.pd.scratchpad_desc());
            inputs_.emplace_back(src, b);
        }
    }
}

void PatchEmbedSteps::gather(int image, int patch, float* dst) const {
    const int patches = weights_.grid_.patches();
    for (const auto& tile : weights_.tiles_) {
        const float* src = out_ + (std::int64_t(batch_) * tile.channels.begin + std::int64_t(image) * tile.channels.size) *
                                      patches + patch;
        for (int c = 0; c < tile.channels.size; ++c) dst[tile.channels.begin + c] = src[std::int64_t(c) * patches];
    }
}

void PatchEmbedSteps::bind_input(const float* input) {
    for (auto& [memory, image] : inputs_)
        memory.set_data_handle(const_cast<float*>(input) + image * image_elements_);
}

}  // namespace onevit
