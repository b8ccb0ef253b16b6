#include "ops/attention.hpp"

#include <cstring>
#include <map>

#include "ops/kernel_check.hpp"
#include "ops/quantize.hpp"
#include "ops/rope.hpp"
#include "ops/softmax.hpp"

namespace onevit {

namespace {

using dnnl::memory;

constexpr double kTaskOverhead = 2e4;  // per-task dispatch cost, in multiply-accumulates

// Query rows per task: enough tasks to keep every thread busy, no more.
int choose_query_parts(const AttentionShape& s, int threads, double* cost_out = nullptr) {
    const int units = s.batch * s.heads;
    int best = 1;
    double best_cost = 0;
    for (int parts = 1; parts <= s.tokens && parts <= 64; ++parts) {
        const double rows = (s.tokens + parts - 1) / parts;
        const double cost = phase_cost(units * parts, threads, 2 * rows * s.tokens * s.head_dim, kTaskOverhead);
        if (parts == 1 || cost < best_cost) best = parts, best_cost = cost;
    }
    if (cost_out) *cost_out = best_cost;
    return best;
}

// Rows of `bytes` each, strides in bytes.
void copy_rows(const char* src, std::int64_t src_stride, int rows, std::size_t bytes, char* dst,
               std::int64_t dst_stride) {
    for (int r = 0; r < rows; ++r) std::memcpy(dst + r * dst_stride, src + r * src_stride, bytes);
}

struct PrimitiveDescs {
    dnnl::matmul::primitive_desc scores;
    dnnl::matmul::primitive_desc mix;
};

PrimitiveDescs primitive_descs(const dnnl::engine& engine, const AttentionShape& s, int rows, Activation::Type qkv,
                               Activation::Type out) {
    const int T = s.tokens, dh = s.head_dim;
    const memory::desc q_md({rows, dh}, qkv, {dh, 1});
    const memory::desc kt_md({dh, T}, qkv, {1, dh});  // kᵀ: a view of the dense k block
    const memory::desc v_md({T, dh}, qkv, {dh, 1});
    const memory::desc scores_md = strided_md({rows, T}, {T, 1});
    const memory::desc probabilities_md({rows, T}, qkv, {T, 1});
    const memory::desc o_md({rows, dh}, out, {dh, 1});
    dnnl::primitive_attr scaled = user_scratchpad_attr();
    scaled.set_output_scales(0, {s.scale});
    return {checked(dnnl::matmul::primitive_desc(dnnl::matmul::desc(q_md, kt_md, scores_md), scaled, engine),
                    "attention scores matmul"),
            checked(dnnl::matmul::primitive_desc(dnnl::matmul::desc(probabilities_md, v_md, o_md),
                                                 user_scratchpad_attr(), engine),
                    "attention mix matmul")};
}

// The tasks' query ranges, and one set of descriptors per distinct range height.
struct QueryPlan {
    std::vector<Range> query_parts;
    std::map<int, int> rows_class;    // query rows → class
    std::vector<PrimitiveDescs> pds;  // by class
};

QueryPlan plan_queries(const dnnl::engine& engine, int threads, const AttentionShape& s, Activation::Type qkv,
                       Activation::Type out) {
    QueryPlan plan{split_evenly(s.tokens, choose_query_parts(s, threads)), {}, {}};
    for (Range r : plan.query_parts) {
        if (plan.rows_class.count(r.size)) continue;
        plan.rows_class.emplace(r.size, static_cast<int>(plan.pds.size()));
        plan.pds.push_back(primitive_descs(engine, s, r.size, qkv, out));
    }
    return plan;
}

std::size_t aligned64(std::size_t bytes) { return (bytes + 63) / 64 * 64; }

}  // namespace

double modelled_attention_macs(const AttentionShape& shape, int threads) {
    double cost = 0;
    choose_query_parts(shape, threads, &cost);
    return cost;
}

void Attention::plan(const dnnl::engine& engine, int threads, const AttentionShape& shape, Activation::Type qkv,
                     Activation::Type out) {
    plan_queries(engine, threads, shape, qkv, out);
}

Attention::Attention(const dnnl::engine& engine, int threads, const AttentionShape& s, Activation qkv, Activation out)
    : engine_(engine),
      shape_(s),
      qkv_type_(qkv.type),
      qkv_bytes_(Activation::bytes_per_element(qkv.type)),
      out_bytes_(Activation::bytes_per_element(out.type)) {
    const int T = s.tokens, dh = s.head_dim, I = s.inner();
    const std::int64_t qkv_stride = 3 * I;
    const QueryPlan plan = plan_queries(engine, threads, s, qkv.type, out.type);
    for (const PrimitiveDescs& p : plan.pds) {
        scores_pds_.push_back(p.scores), mix_pds_.push_back(p.mix);
        scores_primitives_.push_back(dnnl::matmul(p.scores)), mix_primitives_.push_back(dnnl::matmul(p.mix));
        scratchpad_bytes_ = std::max({scratchpad_bytes_, p.scores.scratchpad_desc().get_size(),
                                      p.mix.scratchpad_desc().get_size()});
    }
    // Every block is sized for all T rows; each rows class views its first rows.
    // The probabilities have qkv's type: f32 in place of the scores, or bf16.
    const std::size_t block = aligned64(std::size_t(T) * dh * std::max(qkv_bytes_, out_bytes_));
    const std::size_t scores = aligned64(std::size_t(T) * T * sizeof(float));
    const bool in_place = qkv.type == memory::data_type::f32;
    layout_.q = 0, layout_.k = block, layout_.v = 2 * block, layout_.o = 3 * block, layout_.scores = 4 * block;
    layout_.probabilities = in_place ? layout_.scores : layout_.scores + scores;
    layout_.row = layout_.scores + scores + (in_place ? 0 : scores);
    layout_.bytes = layout_.row + aligned64(sizeof(float) * dh);
    workspace_bytes_ = layout_.bytes;

    for (int b = 0; b < s.batch; ++b) {
        for (int h = 0; h < s.heads; ++h) {
            const auto* q = static_cast<const char*>(qkv.at(std::int64_t(b) * T, qkv_stride, h * dh));
            for (Range r : plan.query_parts)
                tasks_.push_back({b * s.heads + h, r, plan.rows_class.at(r.size), q + r.begin * qkv_stride * qkv_bytes_,
                                  q + I * qkv_bytes_, q + 2 * I * qkv_bytes_,
                                  static_cast<char*>(out.at(std::int64_t(b) * T + r.begin, I, h * dh))});
        }
    }
}

void Attention::bind(const ThreadMemory& thread_memory) {
    slots_.clear();
    for (int slot = 0; slot < thread_memory.slots(); ++slot) {
        SlotSteps steps;
        steps.workspace = thread_memory.workspace(slot);
        char* w = steps.workspace;
        for (std::size_t c = 0; c < scores_pds_.size(); ++c) {
            const auto& scores = scores_pds_[c];
            const auto& mix = mix_pds_[c];
            steps.scores.emplace_back(scores_primitives_[c],
                                      std::unordered_map<int, memory>{
                                          {DNNL_ARG_SRC, memory(scores.src_desc(), engine_, w + layout_.q)},
                                          {DNNL_ARG_WEIGHTS, memory(scores.weights_desc(), engine_, w + layout_.k)},
                                          {DNNL_ARG_DST, memory(scores.dst_desc(), engine_, w + layout_.scores)}});
            steps.mix.emplace_back(mix_primitives_[c],
                                   std::unordered_map<int, memory>{
                                       {DNNL_ARG_SRC, memory(mix.src_desc(), engine_, w + layout_.probabilities)},
                                       {DNNL_ARG_WEIGHTS, memory(mix.weights_desc(), engine_, w + layout_.v)},
                                       {DNNL_ARG_DST, memory(mix.dst_desc(), engine_, w + layout_.o)}});
        }
        slots_.push_back(std::move(steps));
    }
}

void Attention::start() {
    for (SlotSteps& s : slots_) s.unit = -1;  // qkv holds a new layer's values
}

void Attention::run(int t, TaskContext& context) {
    const Task& task = tasks_[t];
    SlotSteps& steps = slots_[context.slot];
    char* w = steps.workspace;
    const int T = shape_.tokens, dh = shape_.head_dim, I = shape_.inner();
    const std::int64_t qkv_stride = 3 * I * qkv_bytes_, block_stride = dh * qkv_bytes_;
    const bool transforms = layer_ && layer_->transforms_qk();
    auto* row = reinterpret_cast<float*>(w + layout_.row);
    const int head = task.unit % shape_.heads;
    if (steps.unit != task.unit) {
        if (transforms)
            copy_transformed(task.k, T, 0, head, layer_->k_norm, w + layout_.k, row);
        else
            copy_rows(task.k, qkv_stride, T, block_stride, w + layout_.k, block_stride);
        copy_rows(task.v, qkv_stride, T, block_stride, w + layout_.v, block_stride);
        steps.unit = task.unit;
    }
    if (transforms)
        copy_transformed(task.q, task.queries.size, task.queries.begin, head, layer_->q_norm, w + layout_.q, row);
    else
        copy_rows(task.q, qkv_stride, task.queries.size, block_stride, w + layout_.q, block_stride);
    steps.scores[task.rows_class].execute(context);
    auto* scores = reinterpret_cast<float*>(w + layout_.scores);
    const float* bias = layer_ && layer_->bias ? layer_->bias + (std::int64_t(head) * T + task.queries.begin) * T : nullptr;
    softmax_rows(scores, task.queries.size, T, Activation(w + layout_.probabilities, qkv_type_), bias);
    if (probabilities_) copy_out_probabilities(task, w + layout_.probabilities);
    steps.mix[task.rows_class].execute(context);
    copy_rows(w + layout_.o, dh * out_bytes_, task.queries.size, dh * out_bytes_, task.out, I * out_bytes_);
}

void Attention::copy_transformed(const char* src, int rows, int first_token, int head,
                                 const std::optional<NormParams>& norm, char* dst, float* row) const {
    const int dh = shape_.head_dim, T = shape_.tokens;
    const Activation from(const_cast<char*>(src), qkv_type_), to(dst, qkv_type_);
    const std::int64_t rope_head = layer_->rope_per_head ? std::int64_t(head) * T * dh : 0;
    for (int r = 0; r < rows; ++r) {
        load_row(from, r, 3 * shape_.inner(), dh, row);
        if (norm) normalize_row(*norm, row, row);
        if (layer_->rope != Rope::none) {
            const std::int64_t at = rope_head + std::int64_t(first_token + r) * dh;
            rotate_row(layer_->rope, row, layer_->rope_cos + at, layer_->rope_sin + at, dh);
        }
        store_row(row, dh, to, r, dh);
    }
}

// The probabilities as the mix matmul reads them: f32, or bf16 widened here.
void Attention::copy_out_probabilities(const Task& task, const char* probabilities) const {
    const int T = shape_.tokens;
    const int image = task.unit / shape_.heads, head = task.unit % shape_.heads;
    float* dst = probabilities_->probs + image * probabilities_->image_stride +
                 (std::int64_t(head) * T + task.queries.begin) * T;
    const Activation rows(const_cast<char*>(probabilities), qkv_type_);
    for (int row = 0; row < task.queries.size; ++row) load_row(rows, row, T, T, dst + std::int64_t(row) * T);
}

}  // namespace onevit
