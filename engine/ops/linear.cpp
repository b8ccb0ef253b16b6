#include "ops/linear.hpp"

#include <map>
#include <optional>
#include <stdexcept>

#include "ops/quantize.hpp"

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
                             const TensorView* bias, Epilogue epilogue, LinearTuning tuning, LinearTypes types)
    : in_(static_cast<int>(weight.dims[1])),
      out_(static_cast<int>(weight.dims[0])),
      has_bias_(bias != nullptr),
      epilogue_(epilogue),
      threads_(tuning.threads),
      types_(types) {
    const dnnl::engine& engine = loader.engine();
    std::optional<QuantizedWeights> quantized;
    if (int8()) quantized = quantize_per_output_channel(weight.data, out_, in_);
    const int width = choose_column_width(tuning.rows, out_, in_, threads_);
    std::map<int, memory::desc> layout_for_width;
    for (Range columns : split_by(out_, width)) {
        ColumnTile tile;
        tile.columns = columns;
        if (quantized)
            tile.weight_scales.assign(quantized->scales.begin() + columns.begin,
                                      quantized->scales.begin() + columns.begin + columns.size);
        auto layout = layout_for_width.find(columns.size);
        if (layout == layout_for_width.end()) {
            const memory::dims dims = int8() ? memory::dims{1, in_, columns.size} : memory::dims{in_, columns.size};
            const memory::desc any(dims, types_.src, memory::format_tag::any);
            auto pd = primitive_desc(engine, tuning.rows, tile, any);
            layout = layout_for_width.emplace(columns.size, pd.weights_desc()).first;
        }
        tile.weights_md = layout->second;
        tile.weights = memory(tile.weights_md, engine, weight_memory.allocate(tile.weights_md.get_size()));
        if (bias)
            tile.bias = memory(matrix_md(1, columns.size, columns.size, memory::data_type::f32), engine,
                               const_cast<float*>(bias->data + columns.begin));
        tiles_.push_back(std::move(tile));
    }
    // [out, in] row-major is the (in × out) matrix with strides {1, in}.
    const memory::data_type source_type = int8() ? memory::data_type::s8 : memory::data_type::f32;
    const void* source_data = int8() ? static_cast<const void*>(quantized->values.data()) : weight.data;
    loader.run([&] {
        loader.parallel(static_cast<int>(tiles_.size()), [&](int t) {
            ColumnTile& tile = tiles_[t];
            const Activation rows(const_cast<void*>(source_data), source_type);
            const memory::desc source_md =
                int8() ? memory::desc({1, in_, tile.columns.size}, source_type,
                                      {std::int64_t(in_) * tile.columns.size, 1, in_})
                       : memory::desc({in_, tile.columns.size}, source_type, {1, in_});
            memory source(source_md, engine, rows.at(tile.columns.begin, in_));
            dnnl::reorder(source, tile.weights).execute(loader.stream(), source, tile.weights);
        });
    });
}

memory::desc LinearWeights::matrix_md(int rows, int cols, std::int64_t row_stride, memory::data_type type) const {
    if (int8()) return memory::desc({1, rows, cols}, type, {rows * row_stride, row_stride, 1});
    return memory::desc({rows, cols}, type, {row_stride, 1});
}

dnnl::primitive_attr LinearWeights::attr(int rows, const ColumnTile& tile) const {
    dnnl::primitive_attr attr = user_scratchpad_attr();
    dnnl::post_ops post_ops;
    if (int8()) {
        attr.set_output_scales(1 << 2, tile.weight_scales);  // per output channel
        post_ops.append_binary(dnnl::algorithm::binary_mul, matrix_md(rows, 1, 1, memory::data_type::f32));
        if (has_bias_)
            post_ops.append_binary(dnnl::algorithm::binary_add,
                                   matrix_md(1, tile.columns.size, tile.columns.size, memory::data_type::f32));
    }
    switch (epilogue_) {
        case Epilogue::none: break;
        case Epilogue::gelu_erf: post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f); break;
        case Epilogue::gelu_tanh: post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_tanh, 0.f, 0.f); break;
        case Epilogue::residual_add: post_ops.append_sum(1.f); break;
    }
    attr.set_post_ops(post_ops);
    return attr;
}

dnnl::matmul::primitive_desc LinearWeights::primitive_desc(const dnnl::engine& engine, int rows, const ColumnTile& tile,
                                                           const memory::desc& weights_md) const {
    // Column tiles write a strided slice of dst rows; a single tile is dense (and gets brgemm).
    const memory::desc src_md = matrix_md(rows, in_, in_, types_.src);
    const memory::desc dst_md = matrix_md(rows, tile.columns.size, out_, types_.dst);
    const memory::desc bias_md = has_bias_ && !int8()
                                     ? matrix_md(1, tile.columns.size, tile.columns.size, memory::data_type::f32)
                                     : memory::desc();
    const dnnl::matmul::desc desc(src_md, weights_md, bias_md, dst_md);
    return dnnl::matmul::primitive_desc(desc, attr(rows, tile), engine);
}

LinearSteps::LinearSteps(const LinearWeights& w, const dnnl::engine& engine, int rows, Activation src,
                         Activation dst) {
    if (src.type != w.types_.src || dst.type != w.types_.dst || (w.int8() && !src.row_scales))
        throw std::logic_error("LinearSteps: activations of other data types than the weights were prepared for");
    const int width = w.tiles_.front().columns.size;
    const int row_parts = choose_row_parts(rows, static_cast<int>(w.tiles_.size()), width, w.in_, w.threads_, nullptr);
    std::map<std::pair<int, int>, dnnl::matmul::primitive_desc> pds;  // by (rows, tile)
    for (std::size_t t = 0; t < w.tiles_.size(); ++t) {
        const auto& tile = w.tiles_[t];
        for (Range r : split_evenly(rows, row_parts)) {
            // int8 tiles differ by their scales, others by their width only.
            const auto key = std::make_pair(r.size, w.int8() ? int(t) : tile.columns.size);
            auto pd = pds.find(key);
            if (pd == pds.end()) pd = pds.emplace(key, w.primitive_desc(engine, r.size, tile, tile.weights_md)).first;
            Step step{dnnl::matmul(pd->second), {}, {}};
            step.args[DNNL_ARG_SRC] = memory(pd->second.src_desc(), engine, src.at(r.begin, w.in_));
            step.args[DNNL_ARG_WEIGHTS] = tile.weights;
            if (w.int8()) {
                step.args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] =
                    memory(w.matrix_md(r.size, 1, 1, memory::data_type::f32), engine, src.row_scales + r.begin);
                if (w.has_bias_) step.args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1] = tile.bias;
            } else if (w.has_bias_) {
                step.args[DNNL_ARG_BIAS] = tile.bias;
            }
            step.args[DNNL_ARG_DST] = memory(pd->second.dst_desc(), engine, dst.at(r.begin, w.out_, tile.columns.begin));
            if (w.tiles_.size() == 1)
                add_row_tile(std::move(step), pd->second.scratchpad_desc(), r);
            else
                add(std::move(step), pd->second.scratchpad_desc());
        }
    }
}

}  // namespace onevit
