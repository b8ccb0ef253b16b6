#include "ops/patch_embed.hpp"

#include <map>

namespace onevit {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

constexpr double kBandOverheadMacs = 4e5;  // as linear.cpp's tile overhead

// A band of grid rows [first, first + rows) of one image, NHWC, as a tensor of its own.
memory::desc nhwc_band(int channels, int height, int width, int batch_stride_rows) {
    return strided_md({1, channels, height, width},
                      {std::int64_t(batch_stride_rows) * width * channels, 1, std::int64_t(width) * channels, channels});
}

// Grid-row bands per image: enough tasks over the batch to balance the threads.
int choose_bands(const PatchGrid& s, int dim, int threads, int batch) {
    int best = 1;
    double best_cost = 0;
    for (int parts = 1; parts <= s.grid_height(); ++parts) {
        const double rows = (s.grid_height() + parts - 1) / parts;
        const double work = rows * s.grid_width() * dim * double(s.patch_dim());
        const double cost = phase_cost(batch * parts, threads, work, kBandOverheadMacs);
        if (parts == 1 || cost < best_cost) best = parts, best_cost = cost;
    }
    return best;
}

}  // namespace

dnnl::convolution_forward::primitive_desc PatchEmbedWeights::primitive_desc(const dnnl::engine& engine,
                                                                            int grid_rows,
                                                                            const memory::desc& weights_md) const {
    const PatchGrid& s = grid_;
    const memory::desc src = nhwc_band(s.channels, grid_rows * s.patch, s.image_width, grid_rows * s.patch);
    const memory::desc dst = nhwc_band(dim_, grid_rows, s.grid_width(), grid_rows);
    const memory::desc bias({dim_}, memory::data_type::f32, tag::x);
    const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                               src, weights_md, bias, dst, {s.patch, s.patch}, {0, 0}, {0, 0});
    return dnnl::convolution_forward::primitive_desc(desc, user_scratchpad_attr(), engine);
}

PatchEmbedWeights::PatchEmbedWeights(Executor& executor, const PatchGrid& grid, const TensorView& weight,
                                     const TensorView& bias)
    : grid_(grid), dim_(static_cast<int>(weight.dims[0])) {
    const dnnl::engine& engine = executor.engine();
    const memory::desc any({dim_, grid.channels, grid.patch, grid.patch}, memory::data_type::f32, tag::any);
    const auto pd = primitive_desc(engine, grid.grid_height(), any);
    weights_ = memory(pd.weights_desc(), engine);
    bias_ = memory(pd.bias_desc(), engine, const_cast<float*>(bias.data));
    executor.run([&] {
        const memory::desc oihw({dim_, grid.channels, grid.patch, grid.patch}, memory::data_type::f32, tag::oihw);
        memory source(oihw, engine, const_cast<float*>(weight.data));
        dnnl::reorder(source, weights_).execute(executor.stream(), source, weights_);
    });
}

PatchEmbedSteps::PatchEmbedSteps(const PatchEmbedWeights& w, const dnnl::engine& engine, int threads, int batch,
                                 float* out) {
    const PatchGrid& s = w.grid_;
    const int C = s.channels, H = s.image_height, W = s.image_width, P = s.patch;
    image_elements_ = std::int64_t(C) * H * W;
    nhwc_ = AlignedBuffer(std::size_t(batch) * image_elements_);
    std::map<int, dnnl::convolution_forward::primitive_desc> pds;  // by grid rows
    std::map<int, dnnl::reorder::primitive_desc> reorders;         // by grid rows
    for (int b = 0; b < batch; ++b) {
        for (Range rows : split_evenly(s.grid_height(), choose_bands(s, w.dim_, threads, batch))) {
            auto pd = pds.find(rows.size);
            if (pd == pds.end()) pd = pds.emplace(rows.size, w.primitive_desc(engine, rows.size, w.weights_.get_desc())).first;
            const int in_rows = rows.size * P;
            auto reorder = reorders.find(rows.size);
            if (reorder == reorders.end()) {
                const memory::desc nchw = strided_md({1, C, in_rows, W}, {image_elements_, std::int64_t(H) * W, W, 1});
                reorder = reorders
                              .emplace(rows.size, dnnl::reorder::primitive_desc(engine, nchw, engine,
                                                                                pd->second.src_desc(),
                                                                                user_scratchpad_attr()))
                              .first;
            }
            const std::int64_t first_row = std::int64_t(rows.begin) * P;
            float* band_nhwc = nhwc_.data() + b * image_elements_ + first_row * W * C;
            const memory band(pd->second.src_desc(), engine, band_nhwc);
            Band band_steps{{dnnl::reorder(reorder->second), {}}, {dnnl::convolution_forward(pd->second), {}},
                            b * image_elements_ + first_row * W};
            band_steps.to_nhwc.args = {{DNNL_ARG_FROM, memory(reorder->second.src_desc(), engine, nullptr)},
                                       {DNNL_ARG_TO, band},
                                       {DNNL_ARG_SCRATCHPAD, memory()}};
            const std::int64_t first_patch = std::int64_t(b) * s.patches() + std::int64_t(rows.begin) * s.grid_width();
            band_steps.convolution.args = {
                {DNNL_ARG_SRC, band},
                {DNNL_ARG_WEIGHTS, w.weights_},
                {DNNL_ARG_BIAS, w.bias_},
                {DNNL_ARG_DST, memory(pd->second.dst_desc(), engine, out + first_patch * w.dim_)},
                {DNNL_ARG_SCRATCHPAD, memory()}};
            for (std::size_t bytes : {reorder->second.scratchpad_desc().get_size(),
                                      pd->second.scratchpad_desc().get_size()})
                scratchpad_bytes_ = std::max(scratchpad_bytes_, bytes);
            bands_.push_back(std::move(band_steps));
        }
    }
}

void PatchEmbedSteps::run(Executor& executor, const float* input, std::vector<dnnl::memory>& scratchpads) {
    for (Band& band : bands_)
        band.to_nhwc.args[DNNL_ARG_FROM].set_data_handle(const_cast<float*>(input) + band.input_offset);
    executor.parallel(static_cast<int>(bands_.size()), [&](int i) {
        const dnnl::memory& scratchpad = scratchpads[Executor::slot()];
        bands_[i].to_nhwc.execute(executor.stream(), scratchpad);
        bands_[i].convolution.execute(executor.stream(), scratchpad);
    });
}

}  // namespace onevit
