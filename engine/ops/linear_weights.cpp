#include "ops/linear_weights.hpp"

#include <algorithm>
#include <map>

#include "format/dequantize.hpp"
#include "ops/kernel_check.hpp"
#include "ops/quantize.hpp"
#include "ops/schedule.hpp"

namespace onevit {

namespace {

using dnnl::memory;

// Per-tile overhead (scheduling, primitive dispatch, edge effects) in
// multiply-accumulates: a few microseconds of one core.
constexpr double kTileOverheadMacs = 4e5;
constexpr int kColumnBlock = 64;  // the width of brgemm's column blocks
// Each tile streams its columns' weights through its core once, whatever its
// row count: about as much as this many rows of multiply-adds (docs/performance.md).
constexpr double kWeightPassRows = 5;
// Column tiles compute into a dense block of their own (oneDNN 2.6 runs a
// strided output slice with gemm:jit, slower than brgemm) and copy it into
// place: per value, about this many multiply-adds.
constexpr double kCopyMacsPerValue = 20;
constexpr int kMaxRowParts = 64;
// Column tiles take a layer out of its row chain (ops/schedule.hpp), which
// costs barriers and cache reuse the phase model does not see: they must beat
// row tiles by this much.
constexpr double kColumnTilingMargin = 0.03;

// The row split for a given column tiling: a single column tile takes the
// chain's tiles (ops/schedule.hpp), so that it chains with its neighbours;
// column tiles the split that minimises the phase time.
int choose_row_parts(int rows, int column_tiles, int column_width, int in, int threads, double* cost_out) {
    const auto cost_of = [&](int parts) {
        const double tile_rows = ceil_div(rows, parts);
        const double copy = column_tiles > 1 ? tile_rows * column_width * kCopyMacsPerValue : 0;
        const double work = (tile_rows + kWeightPassRows) * column_width * in + copy;
        return phase_cost(column_tiles * parts, threads, work, kTileOverheadMacs);
    };
    int best = column_tiles == 1 ? static_cast<int>(chain_tiles(rows, threads).size()) : 1;
    double best_cost = cost_of(best);
    for (int parts = 2; column_tiles > 1 && parts <= std::min(rows, kMaxRowParts); ++parts) {
        const double cost = cost_of(parts);
        if (cost < best_cost) best = parts, best_cost = cost;
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
        if (w < out) cost *= 1 + kColumnTilingMargin;
        if (first || cost < best_cost) best = w, best_cost = cost, first = false;
    }
    return best;
}

// Multiply-accumulates per f32 one: bf16 and int8 matmuls run 2× and 4× as many per cycle.
double precision_speedup(memory::data_type src) {
    switch (src) {
        case memory::data_type::bf16:
            return 2;
        case memory::data_type::s8:
            return 4;
        default:
            return 1;
    }
}

// A rows × cols matrix whose rows are row_stride elements apart.
memory::desc matrix_md(int rows, int cols, std::int64_t row_stride, memory::data_type type) {
    return memory::desc({rows, cols}, type, {row_stride, 1});
}

std::vector<Range> chunks_of(Range rows, int cols, std::size_t chunk_floats) {
    if (chunk_floats == 0) return {rows};
    const std::size_t floats = std::size_t(rows.size) * cols;
    const int chunks = std::min<int>(rows.size, static_cast<int>((floats + chunk_floats - 1) / chunk_floats));
    std::vector<Range> ranges = split_evenly(rows.size, std::max(chunks, 1));
    for (Range& r : ranges) r.begin += rows.begin;
    return ranges;
}

}  // namespace

Epilogue gelu_epilogue(Gelu gelu) {
    switch (gelu) {
        case Gelu::erf:
            return Epilogue::gelu_erf;
        case Gelu::tanh:
            return Epilogue::gelu_tanh;
        case Gelu::quick:
            return Epilogue::gelu_quick;
    }
    return Epilogue::gelu_erf;
}

std::optional<Gelu> gelu_of(Epilogue epilogue) {
    switch (epilogue) {
        case Epilogue::gelu_erf:
            return Gelu::erf;
        case Epilogue::gelu_tanh:
            return Gelu::tanh;
        case Epilogue::gelu_quick:
            return Gelu::quick;
        default:
            return std::nullopt;
    }
}

bool LinearWeights::row_epilogue() const { return int8() || gelu_of(shape_.epilogue).has_value(); }

double modelled_linear_macs(const LinearShape& shape, LinearTuning tuning, int rows) {
    const int width = choose_column_width(tuning.rows, shape.out, shape.in, tuning.threads);
    double cost = 0;
    choose_row_parts(rows, ceil_div(shape.out, width), width, shape.in, tuning.threads, &cost);
    return cost / precision_speedup(shape.types.src);
}

LinearWeights::LinearWeights(const dnnl::engine& engine, const LinearShape& shape, LinearTuning tuning)
    : shape_(shape), threads_(tuning.threads) {
    const int width = choose_column_width(tuning.rows, shape_.out, shape_.in, threads_);
    std::map<int, memory::desc> layout_for_width;
    for (Range columns : split_by(shape_.out, width)) {
        ColumnTile tile;
        tile.columns = columns;
        // int8: the weight scales are values of the matmul's attributes, not of
        // its layout; the weights' constructors put the real ones in.
        if (int8()) tile.weight_scales.assign(columns.size, 1.f);
        auto layout = layout_for_width.find(columns.size);
        if (layout == layout_for_width.end()) {
            tile.weights_md = memory::desc({shape_.in, columns.size}, shape_.types.src, memory::format_tag::any);
            layout =
                layout_for_width.emplace(columns.size, matmul_desc(engine, tuning.rows, tile).weights_desc()).first;
        }
        tile.weights_md = layout->second;
        tiles_.push_back(std::move(tile));
    }
}

LinearWeights::LinearWeights(Executor& loader, WeightMemory& weight_memory, const TensorView& weight,
                             const TensorView* bias, Epilogue epilogue, LinearTuning tuning, LinearTypes types)
    : LinearWeights(loader.engine(),
                    LinearShape{static_cast<int>(weight.dims[1]), static_cast<int>(weight.dims[0]), bias != nullptr,
                                epilogue, types},
                    tuning) {
    bias_ = bias ? bias->data : nullptr;
    if (!int8()) {
        reorder_into_tiles(loader, weight_memory, weight.data, memory::data_type::f32);
        return;
    }
    const QuantizedWeights quantized = quantize_per_output_channel(weight.data, shape_.out, shape_.in);
    for (ColumnTile& tile : tiles_)
        tile.weight_scales.assign(quantized.scales.begin() + tile.columns.begin,
                                  quantized.scales.begin() + tile.columns.begin + tile.columns.size);
    reorder_into_tiles(loader, weight_memory, quantized.values.data(), memory::data_type::s8);
}

// Weights go to the tiles from the file's own type where the layer computes in
// it (bf16 at bf16, s8 and its scales at int8) — no widening, no requantizing;
// otherwise from f32, widened as the format defines the values.
LinearWeights::LinearWeights(Executor& loader, WeightMemory& weight_memory, const ModelFile& file,
                             const std::string& weight, const TensorView* bias, Epilogue epilogue, LinearTuning tuning,
                             LinearTypes types)
    : LinearWeights(loader.engine(),
                    LinearShape{static_cast<int>(file.stored(weight).dims[1]),
                                static_cast<int>(file.stored(weight).dims[0]), bias != nullptr, epilogue, types},
                    tuning) {
    const StoredTensor& stored = file.stored(weight);
    bias_ = bias ? bias->data : nullptr;
    if (int8() && stored.dtype == TensorDType::int8) {
        for (ColumnTile& tile : tiles_)
            tile.weight_scales.assign(stored.scales + tile.columns.begin,
                                      stored.scales + tile.columns.begin + tile.columns.size);
        reorder_into_tiles(loader, weight_memory, stored.data, memory::data_type::s8);
    } else if (shape_.types.src == memory::data_type::bf16 && stored.dtype == TensorDType::bf16) {
        reorder_into_tiles(loader, weight_memory, stored.data, memory::data_type::bf16);
    } else if (int8()) {
        const QuantizedWeights quantized = quantize_per_output_channel(file.tensor(weight).data, shape_.out, shape_.in);
        for (ColumnTile& tile : tiles_)
            tile.weight_scales.assign(quantized.scales.begin() + tile.columns.begin,
                                      quantized.scales.begin() + tile.columns.begin + tile.columns.size);
        reorder_into_tiles(loader, weight_memory, quantized.values.data(), memory::data_type::s8);
    } else {
        reorder_into_tiles(loader, weight_memory, file.tensor(weight).data, memory::data_type::f32);
    }
}

void LinearWeights::reorder_into_tiles(Executor& loader, WeightMemory& weight_memory, const void* source,
                                       memory::data_type source_type) {
    const dnnl::engine& engine = loader.engine();
    const int in = shape_.in, out = shape_.out;
    for (ColumnTile& tile : tiles_) {
        tile.weights = memory(tile.weights_md, engine, weight_memory.allocate(tile.weights_md.get_size()));
        if (bias_ && !row_epilogue())  // the row loop adds it otherwise
            tile.bias = memory(matrix_md(1, tile.columns.size, tile.columns.size, memory::data_type::f32), engine,
                               const_cast<float*>(bias_ + tile.columns.begin));
    }
    if (row_epilogue() && !bias_) {  // the row loop adds a bias either way
        auto* zeros = static_cast<float*>(weight_memory.allocate(sizeof(float) * out));
        std::fill(zeros, zeros + out, 0.f);
        bias_ = zeros;
    }
    // [out, in] row-major is the (in × out) matrix with strides {1, in}.
    loader.run([&] {
        loader.parallel(static_cast<int>(tiles_.size()), [&](int t) {
            ColumnTile& tile = tiles_[t];
            const Activation rows(const_cast<void*>(source), source_type);
            memory from(memory::desc({in, tile.columns.size}, source_type, {1, in}), engine,
                        rows.at(tile.columns.begin, in));
            const auto reorder = checked(dnnl::reorder::primitive_desc(from, tile.weights), "weight reorder");
            dnnl::reorder(reorder).execute(loader.stream(), from, tile.weights);
        });
    });
}

// f32/bf16: the epilogue as post-ops — the residual add as a sum for a single
// column tile (column tiles add theirs as their block is copied into place).
// int8: only the weight scales, as output scales; the rest is its row loop's,
// as are the bias and GELU of the float layers with one.
dnnl::primitive_attr LinearWeights::attr(const ColumnTile& tile) const {
    dnnl::primitive_attr attr = user_scratchpad_attr();
    if (int8()) attr.set_output_scales(1 << 1, tile.weight_scales);  // per output channel
    if (row_epilogue()) return attr;
    dnnl::post_ops post_ops;
    switch (shape_.epilogue) {
        case Epilogue::none:
        case Epilogue::gelu_erf:  // the GELUs: the row loop's (row_epilogue)
        case Epilogue::gelu_tanh:
        case Epilogue::gelu_quick:
            break;
        case Epilogue::tanh:
            post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_tanh, 0.f, 0.f);
            break;
        case Epilogue::residual_add:
            if (tile.columns.size == shape_.out) post_ops.append_sum(1.f);
            break;
    }
    attr.set_post_ops(post_ops);
    return attr;
}

dnnl::matmul::primitive_desc LinearWeights::matmul_desc(const dnnl::engine& engine, int rows,
                                                        const ColumnTile& tile) const {
    // A dense output either way (so brgemm applies): the layer's own rows for a
    // single column tile, a block of the tile's own otherwise.
    const int cols = tile.columns.size;
    const memory::desc src_md = matrix_md(rows, shape_.in, shape_.in, shape_.types.src);
    const memory::desc dst_md = matrix_md(rows, cols, cols, row_epilogue() ? memory::data_type::f32 : shape_.types.dst);
    const memory::desc bias_md =
        shape_.bias && !row_epilogue() ? matrix_md(1, cols, cols, memory::data_type::f32) : memory::desc();
    const dnnl::matmul::desc desc(src_md, tile.weights_md, bias_md, dst_md);
    return checked(dnnl::matmul::primitive_desc(desc, attr(tile), engine), "matmul");
}

std::vector<LinearTile> plan_linear_tiles(const LinearWeights& w, const dnnl::engine& engine, int rows,
                                          std::size_t chunk_floats) {
    const auto& column_tiles = w.column_tiles();
    int row_parts = choose_row_parts(rows, static_cast<int>(column_tiles.size()), column_tiles.front().columns.size,
                                     w.in_features(), w.threads(), nullptr);
    // The cheapest row split first; should oneDNN have only its reference
    // kernel for some tile, fewer and taller row tiles.
    for (;; --row_parts) {
        try {
            // Descriptors by (rows, width); at int8 by (rows, column tile): int8
            // tiles differ by their weight scales.
            std::map<std::pair<int, int>, dnnl::matmul::primitive_desc> pds;
            std::vector<LinearTile> tiles;
            for (int c = 0; c < static_cast<int>(column_tiles.size()); ++c) {
                const auto& tile = column_tiles[c];
                for (Range r : split_evenly(rows, row_parts)) {
                    LinearTile planned{c, r, {}};
                    for (Range chunk : chunks_of(r, tile.columns.size, chunk_floats)) {
                        const auto key = std::make_pair(chunk.size, w.int8() ? c : tile.columns.size);
                        auto pd = pds.find(key);
                        if (pd == pds.end()) pd = pds.emplace(key, w.matmul_desc(engine, chunk.size, tile)).first;
                        planned.chunks.push_back({chunk, pd->second});
                    }
                    tiles.push_back(std::move(planned));
                }
            }
            return tiles;
        } catch (const ReferenceKernel&) {
            if (row_parts == 1) throw;
            count_reference_fallback();
        }
    }
}

}  // namespace onevit
