#include "ops/linear.hpp"

#include <map>
#include <optional>
#include <stdexcept>

#include "ops/gelu.hpp"
#include "ops/kernel_check.hpp"
#include "ops/quantize.hpp"

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
// Column tiles take a layer out of its row chain (Forward::run_row_chain): the
// chain's ops then run as phases of their own, a barrier each, and its rows
// leave the cache in between — costs the phase model does not see. So column
// tiles must beat row tiles by this much (at 2 threads they won by <1 % and
// the unchained ViT-B/16 ran 89 phases instead of 29).
constexpr double kColumnTilingMargin = 0.03;
// int8 tiles run as row chunks whose f32 blocks are at most this large (this
// Zen 4's L2 per core), so that each stays in L2 from its matmul to its row
// loop. Smaller chunks cost more in the matmuls' efficiency (fewer rows) than
// they save: measured at 256 KiB, ViT-B/16 b1 ran 6 % slower than unchunked,
// at 1 MiB within 1 %, while b8 (788-row tiles, 9.7 MB blocks) ran 5 % faster.
constexpr std::size_t kInt8ChunkBytes = 1 << 20;

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
        if (w < out) cost *= 1 + kColumnTilingMargin;
        if (first || cost < best_cost) best = w, best_cost = cost, first = false;
    }
    return best;
}

ONEVIT_VECTOR_CLONES
void scale_and_add_bias(float* values, int n, float scale, const float* bias) {
    for (int i = 0; i < n; ++i) values[i] = values[i] * scale + bias[i];
}

ONEVIT_VECTOR_CLONES
void add_scaled_into(const float* values, int n, float scale, const float* bias, float* sum) {
    for (int i = 0; i < n; ++i) sum[i] += values[i] * scale + bias[i];
}

// An int8 row tile's chunks: as few as keep each f32 block within kInt8ChunkBytes.
std::vector<Range> int8_chunks(Range rows, int cols) {
    const std::size_t bytes = std::size_t(rows.size) * cols * sizeof(float);
    const int chunks = std::min<int>(rows.size, static_cast<int>((bytes + kInt8ChunkBytes - 1) / kInt8ChunkBytes));
    std::vector<Range> ranges = split_evenly(rows.size, std::max(chunks, 1));
    for (Range& r : ranges) r.begin += rows.begin;
    return ranges;
}

std::optional<Gelu> gelu_of(Epilogue epilogue) {
    switch (epilogue) {
        case Epilogue::gelu_erf: return Gelu::erf;
        case Epilogue::gelu_tanh: return Gelu::tanh;
        case Epilogue::gelu_quick: return Gelu::quick;
        default: return std::nullopt;
    }
}

// int8: a tile's block holds its rows × cols of s32 sums times the weight
// scales (the matmul's output scales). Each row is multiplied by its
// activation scale and gets the bias (and the GELU), in the same pass as it
// is added to the residual in dst or, in place, before it is stored as dst's
// type (s8 quantizes it per row).
void finish_int8_rows(float* block, Range rows, int cols, const float* row_scales, const float* bias,
                      Epilogue epilogue, const Activation& dst, int dst_stride, int dst_column) {
    const std::optional<Gelu> gelu = gelu_of(epilogue);
    for (int row = rows.begin; row < rows.begin + rows.size; ++row) {
        float* values = block + std::int64_t(row - rows.begin) * cols;
        if (epilogue == Epilogue::residual_add) {
            add_scaled_into(values, cols, row_scales[row], bias,
                            static_cast<float*>(dst.at(row, dst_stride, dst_column)));
            continue;
        }
        if (gelu)
            apply_gelu(*gelu, values, cols, row_scales[row], bias);
        else
            scale_and_add_bias(values, cols, row_scales[row], bias);
        store_row(values, cols, dst, row, dst_stride, dst_column);
    }
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
    : in_(shape.in),
      out_(shape.out),
      has_bias_(shape.bias),
      epilogue_(shape.epilogue),
      threads_(tuning.threads),
      types_(shape.types) {
    const int width = choose_column_width(tuning.rows, out_, in_, threads_);
    std::map<int, memory::desc> layout_for_width;
    for (Range columns : split_by(out_, width)) {
        ColumnTile tile;
        tile.columns = columns;
        // int8: the weight scales are values of the matmul's attributes, not of
        // its layout; the weights constructor puts the real ones in.
        if (int8()) tile.weight_scales.assign(columns.size, 1.f);
        auto layout = layout_for_width.find(columns.size);
        if (layout == layout_for_width.end()) {
            const memory::desc any({in_, columns.size}, types_.src, memory::format_tag::any);
            auto pd = primitive_desc(engine, tuning.rows, tile, any);
            layout = layout_for_width.emplace(columns.size, pd.weights_desc()).first;
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
    const dnnl::engine& engine = loader.engine();
    std::optional<QuantizedWeights> quantized;
    if (int8()) quantized = quantize_per_output_channel(weight.data, out_, in_);
    for (ColumnTile& tile : tiles_) {
        if (quantized)
            tile.weight_scales.assign(quantized->scales.begin() + tile.columns.begin,
                                      quantized->scales.begin() + tile.columns.begin + tile.columns.size);
        tile.weights = memory(tile.weights_md, engine, weight_memory.allocate(tile.weights_md.get_size()));
        if (bias && !int8())  // int8 adds the bias in its row loop, from bias_
            tile.bias = memory(matrix_md(1, tile.columns.size, tile.columns.size, memory::data_type::f32), engine,
                               const_cast<float*>(bias->data + tile.columns.begin));
    }
    if (int8() && !bias) {  // the row loop adds a bias either way
        auto* zeros = static_cast<float*>(weight_memory.allocate(sizeof(float) * out_));
        std::fill(zeros, zeros + out_, 0.f);
        bias_ = zeros;
    } else {
        bias_ = bias ? bias->data : nullptr;
    }
    // [out, in] row-major is the (in × out) matrix with strides {1, in}.
    const memory::data_type source_type = int8() ? memory::data_type::s8 : memory::data_type::f32;
    const void* source_data = int8() ? static_cast<const void*>(quantized->values.data()) : weight.data;
    loader.run([&] {
        loader.parallel(static_cast<int>(tiles_.size()), [&](int t) {
            ColumnTile& tile = tiles_[t];
            const Activation rows(const_cast<void*>(source_data), source_type);
            const memory::desc source_md({in_, tile.columns.size}, source_type, {1, in_});
            memory source(source_md, engine, rows.at(tile.columns.begin, in_));
            const auto reorder = checked(dnnl::reorder::primitive_desc(source, tile.weights), "weight reorder");
            dnnl::reorder(reorder).execute(loader.stream(), source, tile.weights);
        });
    });
}

memory::desc LinearWeights::matrix_md(int rows, int cols, std::int64_t row_stride, memory::data_type type) const {
    return memory::desc({rows, cols}, type, {row_stride, 1});
}

// The residual add happens in the matmul (a sum post-op) for a single column
// tile, and in the copy of each column tile's block into its place otherwise.
// int8: only the weight scales, as output scales; the rest is finish_int8_rows'.
dnnl::primitive_attr LinearWeights::attr(const ColumnTile& tile) const {
    dnnl::primitive_attr attr = user_scratchpad_attr();
    if (int8()) {
        attr.set_output_scales(1 << 1, tile.weight_scales);  // per output channel
        return attr;
    }
    dnnl::post_ops post_ops;
    switch (epilogue_) {
        case Epilogue::none: break;
        case Epilogue::gelu_erf: post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f); break;
        case Epilogue::gelu_tanh: post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_tanh, 0.f, 0.f); break;
        case Epilogue::gelu_quick: post_ops.append_eltwise(1.f, dnnl::algorithm::eltwise_swish, 1.702f, 0.f); break;
        case Epilogue::residual_add:
            if (tile.columns.size == out_) post_ops.append_sum(1.f);
            break;
    }
    attr.set_post_ops(post_ops);
    return attr;
}

dnnl::matmul::primitive_desc LinearWeights::primitive_desc(const dnnl::engine& engine, int rows, const ColumnTile& tile,
                                                           const memory::desc& weights_md) const {
    // A dense output either way (so brgemm applies): the layer's own rows for a
    // single column tile, a block of the tile's own otherwise.
    const int cols = tile.columns.size;
    const memory::desc src_md = matrix_md(rows, in_, in_, types_.src);
    const memory::desc dst_md = matrix_md(rows, cols, cols, int8() ? memory::data_type::f32 : types_.dst);
    const memory::desc bias_md =
        has_bias_ && !int8() ? matrix_md(1, cols, cols, memory::data_type::f32) : memory::desc();
    const dnnl::matmul::desc desc(src_md, weights_md, bias_md, dst_md);
    return checked(dnnl::matmul::primitive_desc(desc, attr(tile), engine), "matmul");
}

dnnl::reorder::primitive_desc LinearWeights::copy_desc(const dnnl::engine& engine, int rows, Range columns) const {
    dnnl::primitive_attr attr = user_scratchpad_attr();
    if (epilogue_ == Epilogue::residual_add) {
        dnnl::post_ops add;
        add.append_sum(1.f);
        attr.set_post_ops(add);
    }
    const memory::desc block({rows, columns.size}, types_.dst, {columns.size, 1});
    const memory::desc place({rows, columns.size}, types_.dst, {out_, 1});
    return checked(dnnl::reorder::primitive_desc(engine, block, engine, place, attr), "column tile copy");
}

std::vector<LinearSteps::Tile> LinearSteps::plan(const LinearWeights& w, const dnnl::engine& engine, int rows) {
    const int column_tiles = static_cast<int>(w.tiles_.size());
    int row_parts = choose_row_parts(rows, column_tiles, w.tiles_.front().columns.size, w.in_, w.threads_, nullptr);
    // The cheapest row split first; should oneDNN have only its reference
    // kernel for some tile, fewer and taller row tiles.
    for (;; --row_parts) {
        try {
            // Matmuls by (rows, width), at int8 by (rows, tile): int8 tiles
            // differ by their weight scales. Copies by (rows, width).
            std::map<std::pair<int, int>, dnnl::matmul::primitive_desc> pds;
            std::map<std::pair<int, int>, dnnl::reorder::primitive_desc> copies;
            std::vector<Tile> tiles;
            for (int c = 0; c < column_tiles; ++c) {
                const auto& tile = w.tiles_[c];
                for (Range r : split_evenly(rows, row_parts)) {
                    std::vector<Chunk> chunks;
                    for (Range chunk : w.int8() ? int8_chunks(r, tile.columns.size) : std::vector<Range>{r}) {
                        const auto pd_key = std::make_pair(chunk.size, w.int8() ? c : tile.columns.size);
                        auto pd = pds.find(pd_key);
                        if (pd == pds.end())
                            pd = pds.emplace(pd_key, w.primitive_desc(engine, chunk.size, tile, tile.weights_md)).first;
                        chunks.push_back({chunk, pd->second});
                    }
                    std::optional<dnnl::reorder::primitive_desc> copy;
                    if (column_tiles > 1 && !w.int8()) {
                        const auto copy_key = std::make_pair(r.size, tile.columns.size);
                        auto found = copies.find(copy_key);
                        if (found == copies.end())
                            found = copies.emplace(copy_key, w.copy_desc(engine, r.size, tile.columns)).first;
                        copy = found->second;
                    }
                    tiles.push_back({c, r, std::move(chunks), copy});
                }
            }
            return tiles;
        } catch (const ReferenceKernel&) {
            if (row_parts == 1) throw;
            count_reference_fallback();
        }
    }
}

LinearSteps::LinearSteps(const LinearWeights& w, const dnnl::engine& engine, int rows, Activation src,
                         Activation dst, LinearBlocks blocks) {
    const bool int8_dst_ok = dst.type != memory::data_type::s8 || w.tiles_.size() == 1;
    if (src.type != w.types_.src || (w.int8() ? !src.row_scales || !int8_dst_ok : dst.type != w.types_.dst))
        throw std::logic_error("LinearSteps: activations of other data types than the weights were prepared for");
    const bool blocked = w.int8() || w.tiles_.size() > 1;
    if (blocked && !blocks.data) {
        own_blocks_ = AlignedBuffer(std::size_t(rows) * w.out_);  // floats: room for any dst type
        blocks = {own_blocks_.data(), w.out_};
    }
    for (const Tile& t : plan(w, engine, rows)) {
        const auto& tile = w.tiles_[t.column_tile];
        void* place = dst.at(t.rows.begin, w.out_, tile.columns.begin);
        // A row tile's blocks lie in its own rows of blocks, column tile after
        // column tile; its chunks take turns in the first rows of its block.
        float* block = blocks.data + std::int64_t(t.rows.begin) * blocks.row_pitch +
                       std::int64_t(t.rows.size) * tile.columns.begin;
        std::vector<Step> chunk_steps;
        std::size_t scratchpad_bytes = 0;
        for (const Chunk& chunk : t.chunks) {
            Step step{dnnl::matmul(chunk.pd), {}};
            step.args[DNNL_ARG_SRC] = memory(chunk.pd.src_desc(), engine, src.at(chunk.rows.begin, w.in_));
            step.args[DNNL_ARG_WEIGHTS] = tile.weights;
            if (w.has_bias_ && !w.int8()) step.args[DNNL_ARG_BIAS] = tile.bias;
            step.args[DNNL_ARG_DST] = memory(chunk.pd.dst_desc(), engine, blocked ? static_cast<void*>(block) : place);
            if (w.int8()) {
                const float* bias = w.bias_ + tile.columns.begin;
                step.after = [=, rows = chunk.rows, epilogue = w.epilogue_, out = w.out_] {
                    finish_int8_rows(block, rows, tile.columns.size, src.row_scales, bias, epilogue, dst, out,
                                     tile.columns.begin);
                };
            }
            scratchpad_bytes = std::max(scratchpad_bytes, chunk.pd.scratchpad_desc().get_size());
            chunk_steps.push_back(std::move(step));
        }
        Step step = std::move(chunk_steps.front());
        step.then_steps.assign(std::make_move_iterator(chunk_steps.begin() + 1),
                               std::make_move_iterator(chunk_steps.end()));
        if (t.copy) {
            step.then = dnnl::reorder(*t.copy);
            step.then_args[DNNL_ARG_FROM] = memory(t.copy->src_desc(), engine, block);
            step.then_args[DNNL_ARG_TO] = memory(t.copy->dst_desc(), engine, place);
            scratchpad_bytes = std::max(scratchpad_bytes, t.copy->scratchpad_desc().get_size());
        }
        if (w.tiles_.size() == 1)
            add_row_tile(std::move(step), scratchpad_bytes, t.rows);
        else
            add(std::move(step), scratchpad_bytes);
    }
}

}  // namespace onevit
