#include "ops/linear_row_loop.hpp"

#include <algorithm>
#include <stdexcept>

#include "ops/bf16_store.hpp"
#include "ops/gelu.hpp"
#include "ops/quantize.hpp"
#include "ops/vector_math.hpp"
#include "runtime/cpu_caches.hpp"

namespace onevit {

namespace {

using dnnl::memory;

ONEVIT_VECTOR_CLONES
void scale_and_add_bias(float* values, int n, float scale, const float* bias) {
    for (int i = 0; i < n; ++i) values[i] = values[i] * scale + bias[i];
}

ONEVIT_VECTOR_CLONES
void scale_and_add_bias_into(const float* __restrict values, int n, float scale, const float* bias,
                             float* __restrict out) {
    for (int i = 0; i < n; ++i) out[i] = values[i] * scale + bias[i];
}

ONEVIT_VECTOR_CLONES
void add_scaled_into(const float* values, int n, float scale, const float* bias, float* sum) {
    for (int i = 0; i < n; ++i) sum[i] += values[i] * scale + bias[i];
}

// store_row's s8 case for a row whose max |x| the GELU loop found: the same
// scale and steps, without a pass for the maximum. min/max before the
// conversion: a NaN (a hostile model's) becomes 127, never undefined behaviour.
ONEVIT_VECTOR_CLONES
void quantize_by_max(const float* values, int n, float max_abs, std::int8_t* q, float* row_scale) {
    const float scale = max_abs > 0.f ? max_abs / 127.f : 1.f;
    const float inverse = 1.f / scale;
    *row_scale = scale;
    for (int i = 0; i < n; ++i)
        q[i] = static_cast<std::int8_t>(std::max(-127.f, std::min(127.f, round_even(values[i] * inverse))));
}

// values · scale + bias rounded to bf16 as it is computed (ops/bf16_store.hpp).
ONEVIT_BF16_TARGET
void scale_and_add_bias_to_bf16(const float* values, int n, float scale, const float* bias, std::uint16_t* out) {
    const __m512 s = _mm512_set1_ps(scale);
    store_bf16_by_cpu(n, out, [&](int i, __mmask16 mask) ONEVIT_BF16_TARGET {
        return _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, values + i), s, _mm512_maskz_loadu_ps(mask, bias + i));
    });
}

// block holds rows × cols of s32 sums times the weight scales (f32 sums at
// bf16). Each row is multiplied by its activation scale (int8) and gets the
// bias (and the GELU), in the same pass as it is added to the residual in dst
// or stored as f32 (or bf16, where the CPU rounds to bf16 itself); otherwise
// in place, before it is stored as dst's type (s8 quantized per row).
void finish_rows(float* block, Range rows, int cols, const float* row_scales, const float* bias, Epilogue epilogue,
                 const Activation& dst, int dst_stride, int dst_column) {
    using Type = Activation::Type;
    const std::optional<Gelu> gelu = gelu_of(epilogue);
    for (int row = rows.begin; row < rows.begin + rows.size; ++row) {
        float* values = block + std::int64_t(row - rows.begin) * cols;
        const float scale = row_scales ? row_scales[row] : 1.f;
        void* out = dst.at(row, dst_stride, dst_column);
        if (epilogue == Epilogue::residual_add) {
            add_scaled_into(values, cols, scale, bias, static_cast<float*>(out));
        } else if (dst.type == Type::f32) {
            if (gelu)
                apply_gelu_into(*gelu, values, cols, scale, bias, static_cast<float*>(out));
            else
                scale_and_add_bias_into(values, cols, scale, bias, static_cast<float*>(out));
        } else if (dst.type == Type::bf16 && cpu_rounds_to_bf16()) {
            if (gelu)
                apply_gelu_to_bf16(*gelu, values, cols, scale, bias, static_cast<std::uint16_t*>(out));
            else
                scale_and_add_bias_to_bf16(values, cols, scale, bias, static_cast<std::uint16_t*>(out));
        } else if (dst.type == Type::s8 && dst.scale_group) {  // no GELU (checked at construction)
            scale_add_bias_and_quantize_groups(values, cols, scale, bias, dst.scale_group,
                                               static_cast<std::int8_t*>(out),
                                               dst.scale_at(row, dst_stride, dst_column));
        } else if (gelu && dst.type == Type::s8) {  // whole rows (checked at construction)
            const float max_abs = apply_gelu(*gelu, values, cols, scale, bias);
            quantize_by_max(values, cols, max_abs, static_cast<std::int8_t*>(out), &dst.row_scales[row]);
        } else {
            if (gelu)
                apply_gelu(*gelu, values, cols, scale, bias);
            else
                scale_and_add_bias(values, cols, scale, bias);
            store_row(values, cols, dst, row, dst_stride, dst_column);
        }
    }
}

}  // namespace

std::size_t RowLoopLinear::chunk_floats() { return l2_cache_bytes() / sizeof(float); }

RowLoopLinear::RowLoopLinear(std::string name, const LinearWeights& w, const dnnl::engine& engine, int rows,
                             Activation src, Activation dst)
    : BlockOp(std::move(name), engine),
      src_(src),
      dst_(dst),
      out_(w.out_features()),
      bias_(w.bias()),
      epilogue_(w.shape().epilogue) {
    const auto& column_tiles = w.column_tiles();
    if (!w.int8()) src_.row_scales = nullptr;  // bf16 rows have none (scale 1)
    if (epilogue_ == Epilogue::tanh) throw std::logic_error("RowLoopLinear: no tanh epilogue (poolers stay f32)");
    // s8 output: whole rows from one column tile, or scale groups (no GELU) that no tile splits
    const auto splits_groups = [&] {
        if (dst.type != memory::data_type::s8) return false;
        if (!dst.scale_group) return column_tiles.size() > 1;
        return gelu_of(epilogue_).has_value() ||
               std::any_of(column_tiles.begin(), column_tiles.end(), [&](const LinearWeights::ColumnTile& tile) {
                   return tile.columns.begin % dst.scale_group != 0 || tile.columns.size % dst.scale_group != 0;
               });
    };
    if (!w.row_epilogue() || src.type != w.types().src || (w.int8() && !src.row_scales) || src.scale_group ||
        splits_groups())
        throw std::logic_error("RowLoopLinear: activations of other data types than the weights were prepared for");
    for (const LinearTile& t : plan_linear_tiles(w, engine, rows, chunk_floats())) {
        const auto& tile = column_tiles[t.column_tile];
        Task task{tile.columns, {}};
        for (const LinearTile::Chunk& chunk : t.chunks) {
            scratchpad_bytes_ = std::max(scratchpad_bytes_, chunk.pd.scratchpad_desc().get_size());
            task.chunks.push_back({chunk.rows,
                                   BoundPrimitive(dnnl::matmul(chunk.pd),
                                                  {{DNNL_ARG_SRC, memory(chunk.pd.src_desc(), engine,
                                                                         src.at(chunk.rows.begin, w.in_features()))},
                                                   {DNNL_ARG_WEIGHTS, tile.weights},
                                                   {DNNL_ARG_DST, memory()}}),
                                   block_class(chunk.rows.size, tile.columns.size, chunk.pd.dst_desc())});
        }
        if (column_tiles.size() == 1) row_tiles_.push_back(t.rows);
        tasks_.push_back(std::move(task));
    }
}

void RowLoopLinear::run(int t, TaskContext& context) {
    Task& task = tasks_[t];
    for (Chunk& chunk : task.chunks) {
        const memory& block = workspace_block(context.slot, chunk.block_class);
        chunk.matmul.args[DNNL_ARG_DST] = block;
        chunk.matmul.execute(context);
        finish_rows(static_cast<float*>(block.get_data_handle()), chunk.rows, task.columns.size, src_.row_scales,
                    bias_ + task.columns.begin, epilogue_, dst_, out_, task.columns.begin);
    }
}

}  // namespace onevit
