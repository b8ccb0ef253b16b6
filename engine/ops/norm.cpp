#include "ops/norm.hpp"

#include <cmath>
#include <map>

#include "ops/kernel_check.hpp"
#include "ops/layer_norm_avx512.hpp"
#include "ops/quantize.hpp"
#include "ops/row_op.hpp"
#include "ops/schedule.hpp"
#include "ops/vector_math.hpp"

namespace onevit {

namespace {

using dnnl::layer_normalization_forward;

ONEVIT_VECTOR_CLONES
void layer_norm_row(const float* x, int dim, float eps, const float* scale, const float* shift, float* y) {
    const float mean = sum_of(x, dim) / dim;
    // The centred row and its sum of squares in one pass (the same sums as two).
    const float squares = lane_sum(dim, [&](int i) {
        y[i] = x[i] - mean;
        return y[i] * y[i];
    });
    const float inverse_std = 1.f / std::sqrt(squares / dim + eps);
    for (int k = 0; k < dim; ++k) y[k] = y[k] * inverse_std * scale[k] + shift[k];
}

ONEVIT_VECTOR_CLONES
void add_row(const float* values, int n, float* sum) {
    for (int i = 0; i < n; ++i) sum[i] += values[i];
}

ONEVIT_VECTOR_CLONES
void rms_norm_row(const float* x, int dim, float eps, const float* scale, float* y) {
    const float inverse_rms = 1.f / std::sqrt(sum_of_squares(x, dim) / dim + eps);
    for (int k = 0; k < dim; ++k) y[k] = x[k] * inverse_rms * scale[k];
}

// The tiles of the ops it chains with.
std::vector<Range> norm_tiles(int rows, int threads) { return chain_tiles(rows, threads); }

layer_normalization_forward::primitive_desc layer_norm_desc(const dnnl::engine& engine, int rows, int dim, float eps) {
    const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    const dnnl::memory::desc md = strided_md({rows, dim}, {dim, 1});
    const layer_normalization_forward::desc desc(dnnl::prop_kind::forward_inference, md, eps, flags);
    return checked(layer_normalization_forward::primitive_desc(desc, user_scratchpad_attr(), engine), "layer norm");
}

bool runs_primitive(const NormParams& params, Activation::Type dst) {
    return params.kind == Norm::layer && dst == dnnl::memory::data_type::f32;
}

// oneDNN's LayerNorm, one primitive per row tile.
class LayerNormPrimitive : public Op {
public:
    LayerNormPrimitive(std::string name, const dnnl::engine& engine, int threads, int rows, const NormParams& p,
                       const float* src, float* dst)
        : Op(std::move(name)) {
        using dnnl::memory;
        const memory scale(strided_md({p.dim}, {1}), engine, const_cast<float*>(p.scale));
        const memory shift(strided_md({p.dim}, {1}), engine, const_cast<float*>(p.shift));
        std::map<int, layer_normalization_forward::primitive_desc> pds;  // by tile rows
        for (Range r : norm_tiles(rows, threads)) {
            auto pd = pds.find(r.size);
            if (pd == pds.end()) pd = pds.emplace(r.size, layer_norm_desc(engine, r.size, p.dim, p.eps)).first;
            const std::int64_t first = std::int64_t(r.begin) * p.dim;
            tiles_.emplace_back(
                layer_normalization_forward(pd->second),
                std::unordered_map<int, memory>{
                    {DNNL_ARG_SRC, memory(pd->second.src_desc(), engine, const_cast<float*>(src) + first)},
                    {DNNL_ARG_DST, memory(pd->second.dst_desc(), engine, dst + first)},
                    {DNNL_ARG_SCALE, scale},
                    {DNNL_ARG_SHIFT, shift}});
            scratchpad_bytes_ = std::max(scratchpad_bytes_, pd->second.scratchpad_desc().get_size());
            row_tiles_.push_back(r);
        }
    }
    void run(int task, TaskContext& context) override { tiles_[task].execute(context); }

private:
    std::vector<BoundPrimitive> tiles_;  // by row tile
};

// A loop of ours: f32 statistics, the row stored as dst's type (LayerNorm
// into s8 or bf16: four rows at a time by AVX-512, where it runs).
class NormLoop : public RowOp {
public:
    NormLoop(std::string name, int threads, int rows, const NormParams& params, const float* src, Activation dst,
             bool accumulate)
        : RowOp(std::move(name), threads, rows, kLayerNormRowsAtOnce * params.dim),
          params_(params),
          src_(src),
          dst_(dst),
          accumulate_(accumulate),
          avx512_(!accumulate && layer_norm_rows_avx512_runs(params, dst.type)) {}

    void run(int task, TaskContext& context) override {
        if (!avx512_) return RowOp::run(task, context);
        const Range rows = row_tiles_[task];
        layer_norm_rows_avx512(params_, src_, rows.begin, rows.size, dst_, reinterpret_cast<float*>(context.workspace));
    }

private:
    void run_row(int row, float* values) override {
        normalize_row(params_, src_ + std::int64_t(row) * params_.dim, values);
        if (accumulate_)
            add_row(values, params_.dim, static_cast<float*>(dst_.at(row, params_.dim)));
        else
            store_row(values, params_.dim, dst_, row, params_.dim);
    }
    NormParams params_;
    const float* src_;
    Activation dst_;
    bool accumulate_;
    bool avx512_;
};

}  // namespace

void normalize_row(const NormParams& p, const float* x, float* y) {
    if (p.kind == Norm::rms)
        rms_norm_row(x, p.dim, p.eps, p.scale, y);
    else
        layer_norm_row(x, p.dim, p.eps, p.scale, p.shift, y);
}

std::unique_ptr<Op> make_norm(std::string name, const dnnl::engine& engine, int threads, int rows,
                              const NormParams& params, const float* src, Activation dst, bool accumulate) {
    if (runs_primitive(params, dst.type) && !accumulate)
        return std::make_unique<LayerNormPrimitive>(std::move(name), engine, threads, rows, params, src,
                                                    static_cast<float*>(dst.data));
    return std::make_unique<NormLoop>(std::move(name), threads, rows, params, src, dst, accumulate);
}

void plan_norm(const dnnl::engine& engine, int threads, int rows, const NormParams& params, Activation::Type dst) {
    if (!runs_primitive(params, dst)) return;  // a loop: nothing to plan
    for (Range r : norm_tiles(rows, threads)) layer_norm_desc(engine, r.size, params.dim, params.eps);
}

}  // namespace onevit
