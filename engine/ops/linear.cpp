#include "ops/linear.hpp"

#include <map>

namespace onevit {

namespace {

using dnnl::memory;

// Per-tile overhead (scheduling, primitive dispatch, edge effects) in
// multiply-accumulates: a few microseconds of one core.
constexpr double kTileOverheadMacs = 4e5;
constexpr int kColumnBlock = 64;  // the width of brgemm's column blocks
// Column tiles write a strided slice of each output row, which oneDNN 2.6
// runs with gemm:jit rather than brgemm (dense rows only): measured ~1.4x
// slower per FLOP, so column tiles must buy that much balance to be chosen.
constexpr double kStridedOutputCost = 1.4;
constexpr int kMaxRowParts = 64;

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// The row split that minimises the phase time for a given column tiling.
int choose_row_parts(int rows, int column_tiles, int column_width, int in, int threads, double* cost_out) {
    int best = 1;
    double best_cost = 0;
    for (int parts = 1; parts <= std::min(rows, kMaxRowParts); ++parts) {
        const double strided = column_tiles > 1 ? kStridedOutputCost : 1.0;
        const double work = double(ceil_div(rows, parts)) * column_width * in * strided;
        const double cost = phase_cost(column_tiles * parts, threads, work, kTileOverheadMacs);
        if (parts == 1 || cost < best_cost) best = parts, best_cost = cost;
    }
    if (cost_out) *cost_out = best_cost;
    return best;
}

// The column tile width that minimises the phase time at the typical row count.
int choose_column_width(int rows, int out, int in, int threads) {
    int best = out;
    double best_cost = 0;
    bool first = true;
    for (int width = kColumnBlock; width < out + kColumnBlock; width += kColumnBlock) {
        const int w = std::min(width, out);
        double cost;
        choose_row_parts(rows, ceil_div(out, w), w, in, threads, &cost);
        if (first || cost < best_cost) best = w, best_cost = cost, first = false;
    }
    return best;
}

}  // namespace

LinearWeights::LinearWeights(Executor& loader, WeightMemory& weight_memory, const TensorView& weight,
                             const TensorView* bias, Epilogue epilogue, LinearTuning tuning)
    : in_(static_cast<int>(weight.dims[1])),
      out_(static_cast<int>(weight.dims[0])),
      has_bias_(bias != nullptr),
      epilogue_(epilogue),
      threads_(tuning.threads) {
    const dnnl::engine& engine = loader.engine();
    const int width = choose_column_width(tuning.rows, out_, in_, threads_);
    std::map<int, memory::desc> layout_for_width;
    for (Range columns : split_by(out_, width)) {
        auto layout = layout_for_width.find(columns.size);
        if (layout == layout_for_width.end()) {
            const memory::desc any({in_, columns.size}, memory::data_type::f32, memory::format_tag::any);
            auto pd = primitive_desc(engine, tuning.rows, columns, any);
            layout = layout_for_width.emplace(columns.size, pd.weights_desc()).first;
        }
        ColumnTile tile;
        tile.columns = columns;
        tile.weights_md = layout->second;
        tile.weights = memory(tile.weights_md, engine, weight_memory.allocate(tile.weights_md.get_size()));
        if (bias)
            tile.bias = memory(strided_md({1, columns.size}, {columns.size, 1}), engine,
                               const_cast<float*>(bias->data + columns.begin));
        tiles_.push_back(std::move(tile));
    }
    // [out, in] row-major is the (in × out) matrix with strides {1, in}.
    loader.run([&] {
        loader.parallel(static_cast<int>(tiles_.size()), [&](int t) {
            ColumnTile& tile = tiles_[t];
            memory source(strided_md({in_, tile.columns.size}, {1, in_}), engine,
                          const_cast<float*>(weight.data + std::int64_t(tile.columns.begin) * in_));
            dnnl::reorder(source, tile.weights).execute(loader.stream(), source, tile.weights);
        });
    });
}

dnnl::primitive_attr LinearWeights::attr() const {
    dnnl::primitive_attr attr = user_scratchpad_attr();
    dnnl::post_ops post_ops;
    switch (epilogue_) {
        case Epilogue::none: break;
        case Epilogue::gelu_erf: post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f); break;
        case Epilogue::gelu_tanh: post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_tanh, 0.f, 0.f); break;
        case Epilogue::gelu_quick: post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_swish, 1.702f, 0.f); break;
        case Epilogue::residual_add: post_ops.append_sum(1.f); break;
    }
    attr.set_post_ops(post_ops);
    return attr;
}

dnnl::matmul::primitive_desc LinearWeights::primitive_desc(const dnnl::engine& engine, int rows, Range columns,
                                                           const memory::desc& weights_md) const {
    // Column tiles write a strided slice of dst rows; a single tile is dense (and gets brgemm).
    const memory::desc src_md = strided_md({rows, in_}, {in_, 1});
    const memory::desc dst_md = strided_md({rows, columns.size}, {out_, 1});
    const memory::desc bias_md = has_bias_ ? strided_md({1, columns.size}, {columns.size, 1}) : memory::desc();
    const dnnl::matmul::desc desc(src_md, weights_md, bias_md, dst_md);
    return dnnl::matmul::primitive_desc(desc, attr(), engine);
}

LinearSteps::LinearSteps(const LinearWeights& w, const dnnl::engine& engine, int rows, const float* src,
                         float* dst) {
    const int width = w.tiles_.front().columns.size;
    const int row_parts = choose_row_parts(rows, static_cast<int>(w.tiles_.size()), width, w.in_, w.threads_, nullptr);
    std::map<std::pair<int, int>, dnnl::matmul::primitive_desc> pds;  // by (rows, columns)
    for (const auto& tile : w.tiles_) {
        for (Range r : split_evenly(rows, row_parts)) {
            const auto key = std::make_pair(r.size, tile.columns.size);
            auto pd = pds.find(key);
            if (pd == pds.end())
                pd = pds.emplace(key, w.primitive_desc(engine, r.size, tile.columns, tile.weights_md)).first;
            Step step{dnnl::matmul(pd->second), {}};
            step.args[DNNL_ARG_SRC] = memory(pd->second.src_desc(), engine, const_cast<float*>(src) + std::int64_t(r.begin) * w.in_);
            step.args[DNNL_ARG_WEIGHTS] = tile.weights;
            if (w.has_bias_) step.args[DNNL_ARG_BIAS] = tile.bias;
            step.args[DNNL_ARG_DST] = memory(pd->second.dst_desc(), engine,
                                             dst + std::int64_t(r.begin) * w.out_ + tile.columns.begin);
            if (w.tiles_.size() == 1)
                add_row_tile(std::move(step), pd->second.scratchpad_desc(), r);
            else
                add(std::move(step), pd->second.scratchpad_desc());
        }
    }
}

}  // namespace onevit
