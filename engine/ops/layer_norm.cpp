#include "ops/layer_norm.hpp"

#include <cmath>
#include <map>

#include "ops/kernel_check.hpp"
#include "ops/quantize.hpp"

namespace onevit {

namespace {

// y = (x − mean) / std · scale + shift; y holds the centred x in between.
ONEVIT_VECTOR_CLONES
void normalize_row(const float* x, int dim, float eps, const float* scale, const float* shift, float* y) {
    const float mean = sum_of(x, dim) / dim;
    for (int i = 0; i < dim; ++i) y[i] = x[i] - mean;
    float squares[16] = {};
    int i = 0;
    for (; i + 16 <= dim; i += 16)
        for (int l = 0; l < 16; ++l) squares[l] += y[i + l] * y[i + l];
    float variance = 0.f;
    for (; i < dim; ++i) variance += y[i] * y[i];
    for (float lane : squares) variance += lane;
    const float inverse_std = 1.f / std::sqrt(variance / dim + eps);
    for (int k = 0; k < dim; ++k) y[k] = y[k] * inverse_std * scale[k] + shift[k];
}

}  // namespace

std::vector<LayerNormSteps::Tile> LayerNormSteps::plan(const dnnl::engine& engine, int threads, int rows, int dim,
                                                       float eps) {
    using dnnl::layer_normalization_forward;
    const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    std::map<int, layer_normalization_forward::primitive_desc> pds;  // by tile rows
    std::vector<Tile> tiles;
    // Normalisation is memory-bound and cheap: one tile per thread balances it.
    for (Range r : split_evenly(rows, std::min(rows, threads))) {
        auto pd = pds.find(r.size);
        if (pd == pds.end()) {
            const dnnl::memory::desc md = strided_md({r.size, dim}, {dim, 1});
            const layer_normalization_forward::desc desc(dnnl::prop_kind::forward_inference, md, eps, flags);
            pd = pds.emplace(r.size, checked(layer_normalization_forward::primitive_desc(desc, user_scratchpad_attr(),
                                                                                         engine),
                                             "layer norm"))
                     .first;
        }
        tiles.push_back({r, pd->second});
    }
    return tiles;
}

LayerNormSteps::LayerNormSteps(const dnnl::engine& engine, int threads, int rows, int dim, float eps,
                               const float* scale, const float* shift, float* src, Activation dst) {
    using dnnl::memory;
    if (dst.type != memory::data_type::f32) {
        const auto normalize = [=](int row, float* values) {
            normalize_row(src + std::int64_t(row) * dim, dim, eps, scale, shift, values);
        };
        for (RowTile& tile : row_store_tiles(threads, rows, dim, dst, normalize))
            add_row_tile(std::move(tile.step), 0, tile.rows);
        return;
    }
    const memory scale_mem(strided_md({dim}, {1}), engine, const_cast<float*>(scale));
    const memory shift_mem(strided_md({dim}, {1}), engine, const_cast<float*>(shift));
    for (const Tile& t : plan(engine, threads, rows, dim, eps)) {
        Step step{dnnl::layer_normalization_forward(t.pd), {}};
        step.args[DNNL_ARG_SRC] = memory(t.pd.src_desc(), engine, src + std::int64_t(t.rows.begin) * dim);
        step.args[DNNL_ARG_DST] = memory(t.pd.dst_desc(), engine, dst.at(t.rows.begin, dim));
        step.args[DNNL_ARG_SCALE] = scale_mem;
        step.args[DNNL_ARG_SHIFT] = shift_mem;
        add_row_tile(std::move(step), t.pd.scratchpad_desc().get_size(), t.rows);
    }
}

}  // namespace onevit
