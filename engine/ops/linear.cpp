#include "ops/linear.hpp"

#include <map>
#include <optional>

#include "ops/kernel_check.hpp"

namespace onevit {

namespace {

using dnnl::memory;

// Per-tile overhead (scheduling, primitive dispatch, edge effects) in
// multiply-accumulates: a few microseconds of one core.
constexpr double kTileOverheadMacs = 4e5;
constexpr int kColumnBlock = 64;  // the width of brgemm's column blocks
// Each tile streams its columns' weights through its core once, whatever its
// row count: that costs about as much as this many rows of multiply-adds
// (emulated, onevit bench --emulate-threads: ViT-B/16's fc1 and fc2 as 16 row
// tiles of 12–13 rows took 1.4x the one-core time of one 197-row tile).
constexpr double kWeightPassRows = 5;
// Column tiles compute into a dense block of their own — oneDNN 2.6 runs a
// strided output slice with gemm:jit, ~1.4x slower per FLOP than brgemm — and
// copy the block into its place: per value, about this many multiply-adds.
constexpr double kCopyMacsPerValue = 20;
constexpr int kMaxRowParts = 64;

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// The row split that minimises the phase time for a given column tiling.
int choose_row_parts(int rows, int column_tiles, int column_width, int in, int threads, double* cost_out) {
    int best = 1;
    double best_cost = 0;
    for (int parts = 1; parts <= std::min(rows, kMaxRowParts); ++parts) {
        const double tile_rows = ceil_div(rows, parts);
        const double copy = column_tiles > 1 ? tile_rows * column_width * kCopyMacsPerValue : 0;
        const double work = (tile_rows + kWeightPassRows) * column_width * in + copy;
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

Epilogue gelu_epilogue(Gelu gelu) {
    switch (gelu) {
        case Gelu::erf: return Epilogue::gelu_erf;
        case Gelu::tanh: return Epilogue::gelu_tanh;
        case Gelu::quick: return Epilogue::gelu_quick;
    }
    return Epilogue::gelu_erf;
}

double modelled_linear_macs(const LinearShape& shape, LinearTuning tuning, int rows) {
    const int width = choose_column_width(tuning.rows, shape.out, shape.in, tuning.threads);
    double cost = 0;
    choose_row_parts(rows, ceil_div(shape.out, width), width, shape.in, tuning.threads, &cost);
    return cost;
}

LinearWeights::LinearWeights(const dnnl::engine& engine, const LinearShape& shape, LinearTuning tuning)
    : in_(shape.in), out_(shape.out), has_bias_(shape.bias), epilogue_(shape.epilogue), threads_(tuning.threads) {
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
        tiles_.push_back(std::move(tile));
    }
}

LinearWeights::LinearWeights(Executor& loader, WeightMemory& weight_memory, const TensorView& weight,
                             const TensorView* bias, Epilogue epilogue, LinearTuning tuning)
    : LinearWeights(loader.engine(),
                    LinearShape{static_cast<int>(weight.dims[1]), static_cast<int>(weight.dims[0]), bias != nullptr,
                                epilogue},
                    tuning) {
    const dnnl::engine& engine = loader.engine();
    for (ColumnTile& tile : tiles_) {
        tile.weights = memory(tile.weights_md, engine, weight_memory.allocate(tile.weights_md.get_size()));
        if (bias)
            tile.bias = memory(strided_md({1, tile.columns.size}, {tile.columns.size, 1}), engine,
                               const_cast<float*>(bias->data + tile.columns.begin));
    }
    // [out, in] row-major is the (in × out) matrix with strides {1, in}.
    loader.run([&] {
        loader.parallel(static_cast<int>(tiles_.size()), [&](int t) {
            ColumnTile& tile = tiles_[t];
            memory source(strided_md({in_, tile.columns.size}, {1, in_}), engine,
                          const_cast<float*>(weight.data + std::int64_t(tile.columns.begin) * in_));
            const auto reorder = checked(dnnl::reorder::primitive_desc(source, tile.weights), "weight reorder");
            dnnl::reorder(reorder).execute(loader.stream(), source, tile.weights);
        });
    });
}

// The residual add happens in the matmul (a sum post-op) for a single column
// tile, and in the copy of each column tile's block into its place otherwise.
dnnl::primitive_attr LinearWeights::attr(bool column_tiled) const {
    dnnl::primitive_attr attr = user_scratchpad_attr();
    dnnl::post_ops post_ops;
    switch (epilogue_) {
        case Epilogue::none: break;
        case Epilogue::gelu_erf: post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f); break;
        case Epilogue::gelu_tanh: post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_tanh, 0.f, 0.f); break;
        case Epilogue::gelu_quick: post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_swish, 1.702f, 0.f); break;
        case Epilogue::residual_add:
            if (!column_tiled) post_ops.append_sum(1.f);
            break;
    }
    attr.set_post_ops(post_ops);
    return attr;
}

dnnl::matmul::primitive_desc LinearWeights::primitive_desc(const dnnl::engine& engine, int rows, Range columns,
                                                           const memory::desc& weights_md) const {
    // A dense output either way (so brgemm applies): the layer's own rows for a
    // single column tile, a block of the tile's own otherwise.
    const memory::desc src_md = strided_md({rows, in_}, {in_, 1});
    const memory::desc dst_md = strided_md({rows, columns.size}, {columns.size, 1});
    const memory::desc bias_md = has_bias_ ? strided_md({1, columns.size}, {columns.size, 1}) : memory::desc();
    const dnnl::matmul::desc desc(src_md, weights_md, bias_md, dst_md);
    return checked(dnnl::matmul::primitive_desc(desc, attr(columns.size < out_), engine), "matmul");
}

dnnl::reorder::primitive_desc LinearWeights::copy_desc(const dnnl::engine& engine, int rows, Range columns) const {
    dnnl::primitive_attr attr = user_scratchpad_attr();
    if (epilogue_ == Epilogue::residual_add) {
        dnnl::post_ops add;
        add.append_sum(1.f);
        attr.set_post_ops(add);
    }
    return checked(dnnl::reorder::primitive_desc(engine, strided_md({rows, columns.size}, {columns.size, 1}), engine,
                                                 strided_md({rows, columns.size}, {out_, 1}), attr),
                   "column tile copy");
}

std::vector<LinearSteps::Tile> LinearSteps::plan(const LinearWeights& w, const dnnl::engine& engine, int rows) {
    const int column_tiles = static_cast<int>(w.tiles_.size());
    int row_parts = choose_row_parts(rows, column_tiles, w.tiles_.front().columns.size, w.in_, w.threads_, nullptr);
    // The cheapest row split first; should oneDNN have only its reference
    // kernel for some tile, fewer and taller row tiles.
    for (;; --row_parts) {
        try {
            std::map<std::pair<int, int>, dnnl::matmul::primitive_desc> pds;  // by (rows, columns)
            std::map<std::pair<int, int>, dnnl::reorder::primitive_desc> copies;
            std::vector<Tile> tiles;
            for (int c = 0; c < column_tiles; ++c) {
                const auto& tile = w.tiles_[c];
                for (Range r : split_evenly(rows, row_parts)) {
                    const auto key = std::make_pair(r.size, tile.columns.size);
                    auto pd = pds.find(key);
                    if (pd == pds.end())
                        pd = pds.emplace(key, w.primitive_desc(engine, r.size, tile.columns, tile.weights_md)).first;
                    std::optional<dnnl::reorder::primitive_desc> copy;
                    if (column_tiles > 1) {
                        auto found = copies.find(key);
                        if (found == copies.end())
                            found = copies.emplace(key, w.copy_desc(engine, r.size, tile.columns)).first;
                        copy = found->second;
                    }
                    tiles.push_back({c, r, pd->second, copy});
                }
            }
            return tiles;
        } catch (const ReferenceKernel&) {
            if (row_parts == 1) throw;
            count_reference_fallback();
        }
    }
}

LinearSteps::LinearSteps(const LinearWeights& w, const dnnl::engine& engine, int rows, const float* src,
                         float* dst)
    : blocks_(w.tiles_.size() > 1 ? std::size_t(rows) * w.out_ : 0) {
    for (const Tile& t : plan(w, engine, rows)) {
        const auto& tile = w.tiles_[t.column_tile];
        float* place = dst + std::int64_t(t.rows.begin) * w.out_ + tile.columns.begin;
        // Column tile c's blocks fill rows x columns of blocks_, from rows x c's first column.
        float* block = t.copy ? blocks_.data() + std::int64_t(rows) * tile.columns.begin +
                                    std::int64_t(t.rows.begin) * tile.columns.size
                              : place;
        Step step{dnnl::matmul(t.pd), {}};
        step.args[DNNL_ARG_SRC] = memory(t.pd.src_desc(), engine, const_cast<float*>(src) + std::int64_t(t.rows.begin) * w.in_);
        step.args[DNNL_ARG_WEIGHTS] = tile.weights;
        if (w.has_bias_) step.args[DNNL_ARG_BIAS] = tile.bias;
        step.args[DNNL_ARG_DST] = memory(t.pd.dst_desc(), engine, block);
        if (!t.copy) {
            add_row_tile(std::move(step), t.pd.scratchpad_desc(), t.rows);
            continue;
        }
        step.then = dnnl::reorder(*t.copy);
        step.then_args[DNNL_ARG_FROM] = memory(t.copy->src_desc(), engine, block);
        step.then_args[DNNL_ARG_TO] = memory(t.copy->dst_desc(), engine, place);
        const bool copy_needs_more = t.copy->scratchpad_desc().get_size() > t.pd.scratchpad_desc().get_size();
        add(std::move(step), copy_needs_more ? t.copy->scratchpad_desc() : t.pd.scratchpad_desc());
    }
}

}  // namespace onevit
