#include "ops/attention.hpp"

#include <cstring>
#include <map>
#include <stdexcept>
#include <utility>

#include "ops/bf16_products.hpp"
#include "ops/f32_products.hpp"
#include "ops/int8_products.hpp"
#include "ops/kernel_check.hpp"
#include "ops/prefetch_rows.hpp"
#include "ops/quantize.hpp"
#include "ops/rope.hpp"
#include "ops/softmax.hpp"
#include "runtime/cpu_caches.hpp"

namespace onevit {

namespace {

using dnnl::memory;
using Type = Activation::Type;

constexpr double kTaskOverhead = 2e4;  // per-task dispatch cost, in multiply-accumulates

// At most this many query rows a task: its f32 scores (rows × tokens) within a
// quarter of the L2.
int max_query_rows(int tokens) {
    return std::max<int>(1, static_cast<int>(l2_cache_bytes() / 4 / sizeof(float) / std::size_t(tokens)));
}

// Query rows per task: enough tasks to keep every thread busy, no more, and
// no task over max_query_rows.
int choose_query_parts(const AttentionShape& s, int threads, double* cost_out = nullptr) {
    const int units = s.batch * s.heads;
    const int fewest = (s.tokens + max_query_rows(s.tokens) - 1) / max_query_rows(s.tokens);
    int best = fewest;
    double best_cost = 0;
    for (int parts = fewest; parts <= s.tokens && parts <= std::max(64, fewest); ++parts) {
        const double rows = (s.tokens + parts - 1) / parts;
        const double cost = phase_cost(units * parts, threads, 2 * rows * s.tokens * s.head_dim, kTaskOverhead);
        if (parts == fewest || cost < best_cost) best = parts, best_cost = cost;
    }
    if (cost_out) *cost_out = best_cost;
    return best;
}

// Rows of `bytes` each, strides in bytes.
void copy_rows(const char* src, std::int64_t src_stride, int rows, std::size_t bytes, char* dst,
               std::int64_t dst_stride) {
    for (int r = 0; r < rows; ++r) {
        prefetch_row_ahead(src + r * src_stride, src_stride, bytes);
        std::memcpy(dst + r * dst_stride, src + r * src_stride, bytes);
    }
}

// v's type: s8 where the probabilities are u8.
Type v_type_of(AttentionTypes t) { return t.pv == Type::u8 ? Type::s8 : t.pv; }

// bf16 k and v are packed into the layout the matmuls read (format any) once
// per head and thread where a head has several query parts: from plain k and
// v, brgemm would pack them again at every task; a head run as one task would
// only gain a pass (docs/performance.md, "bf16 q·kᵀ").
constexpr int kMinPartsToPack = 4;
bool packs_kv(AttentionTypes t, int query_parts, bool own_kernel) {
    return t.qk == Type::bf16 && t.pv == Type::bf16 && query_parts >= kMinPartsToPack && !own_kernel;
}

using Kernel = AttentionKernel;
}  // namespace

AttentionKernel attention_kernel(AttentionTypes t, const AttentionShape& s) {
    if (s.head_dim % 16 != 0) return Kernel::onednn;
    if (t.qk == Type::s8 && has_int8_products_kernel()) return Kernel::int8;
    if (t.qk == Type::bf16 && t.pv == Type::bf16 && has_bf16_products_kernel()) return Kernel::bf16;
    if (t.qk == Type::f32 && t.pv == Type::f32 && has_f32_products_kernel()) return Kernel::f32;
    return Kernel::onednn;
}

namespace {

struct PrimitiveDescs {
    dnnl::matmul::primitive_desc scores;
    dnnl::matmul::primitive_desc mix;
};

// q kᵀ into f32 scores (scaled, but for s8, whose scales the softmax applies);
// p v into an f32 block.
PrimitiveDescs primitive_descs(const dnnl::engine& engine, const AttentionShape& s, int rows, AttentionTypes t,
                               bool packed) {
    const int T = s.tokens, dh = s.head_dim;
    const memory::desc q_md({rows, dh}, t.qk, {dh, 1});
    const auto any = memory::format_tag::any;
    // kᵀ: a view of the dense k block, or packed
    const memory::desc kt_md = packed ? memory::desc({dh, T}, t.qk, any) : memory::desc({dh, T}, t.qk, {1, dh});
    const memory::desc scores_md = strided_md({rows, T}, {T, 1});
    const memory::desc probabilities_md({rows, T}, t.pv, {T, 1});
    const memory::desc v_md = packed ? memory::desc({T, dh}, t.pv, any) : memory::desc({T, dh}, v_type_of(t), {dh, 1});
    const memory::desc o_md = strided_md({rows, dh}, {dh, 1});
    dnnl::primitive_attr scaled = user_scratchpad_attr();
    if (t.qk != Type::s8) scaled.set_output_scales(0, {s.scale});
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
    int max_rows = 0;
    bool packed = false;  // packs_kv
};

QueryPlan plan_queries(const dnnl::engine& engine, int threads, const AttentionShape& s, AttentionTypes t) {
    const int parts = choose_query_parts(s, threads);
    QueryPlan plan{
        split_evenly(s.tokens, parts), {}, {}, 0, packs_kv(t, parts, attention_kernel(t, s) != Kernel::onednn)};
    for (Range r : plan.query_parts) {
        plan.max_rows = std::max(plan.max_rows, r.size);
        if (plan.rows_class.count(r.size)) continue;
        plan.rows_class.emplace(r.size, static_cast<int>(plan.pds.size()));
        plan.pds.push_back(primitive_descs(engine, s, r.size, t, plan.packed));
        const PrimitiveDescs &first = plan.pds.front(), &last = plan.pds.back();
        if (last.scores.weights_desc() != first.scores.weights_desc() ||
            last.mix.weights_desc() != first.mix.weights_desc())
            throw std::logic_error("Attention: packed k and v differ by query rows");  // one packing serves all
    }
    return plan;
}

std::size_t aligned64(std::size_t bytes) { return (bytes + 63) / 64 * 64; }
std::size_t bytes_of(Type t) { return Activation::bytes_per_element(t); }

}  // namespace

double modelled_attention_macs(const AttentionShape& shape, int threads) {
    double cost = 0;
    choose_query_parts(shape, threads, &cost);
    return cost;
}

void Attention::plan(const dnnl::engine& engine, int threads, const AttentionShape& shape, AttentionTypes types) {
    plan_queries(engine, threads, shape, types);
}

Attention::Attention(const dnnl::engine& engine, int threads, const AttentionShape& s, Activation qkv, Activation out,
                     AttentionTypes types)
    : Op("attention"),
      engine_(engine),
      shape_(s),
      types_(types),
      qkv_type_(qkv.type),
      out_type_(out.type),
      v_type_(v_type_of(types)),
      kernel_(attention_kernel(types, s)),
      qkv_bytes_(Activation::bytes_per_element(qkv.type)),
      out_bytes_(Activation::bytes_per_element(out.type)) {
    const int T = s.tokens, dh = s.head_dim, I = s.inner();
    const std::int64_t qkv_stride = 3 * I;
    if ((types.qk == Type::s8) != (types.pv == Type::u8))
        throw std::logic_error("Attention: s8 q kT goes with u8 p v, and only with it");
    if (qkv.type == Type::s8 && (types.qk != Type::s8 || qkv.scale_group != dh || !qkv.row_scales))
        throw std::logic_error("Attention: s8 qkv has a scale per head's q, k and v, for s8 q kT");
    const QueryPlan plan = plan_queries(engine, threads, s, types);
    for (const PrimitiveDescs& p : plan.pds) {
        scores_pds_.push_back(p.scores), mix_pds_.push_back(p.mix);
        if (kernel_ != Kernel::onednn) continue;  // the descriptors only size k and v
        scores_primitives_.push_back(dnnl::matmul(p.scores)), mix_primitives_.push_back(dnnl::matmul(p.mix));
        scratchpad_bytes_ =
            std::max({scratchpad_bytes_, p.scores.scratchpad_desc().get_size(), p.mix.scratchpad_desc().get_size()});
    }
    const memory::desc dense_kt({dh, T}, types.qk, {1, dh}), dense_v({T, dh}, v_type_, {dh, 1});
    if (plan.packed) {
        const auto pack = [&](const memory::desc& dense, const memory::desc& packed, const char* what) {
            pack_pds_.push_back(
                checked(dnnl::reorder::primitive_desc(engine, dense, engine, packed, user_scratchpad_attr()), what));
            pack_primitives_.push_back(dnnl::reorder(pack_pds_.back()));
            scratchpad_bytes_ = std::max(scratchpad_bytes_, pack_pds_.back().scratchpad_desc().get_size());
        };
        pack(dense_kt, plan.pds.front().scores.weights_desc(), "attention k packing");
        pack(dense_v, plan.pds.front().mix.weights_desc(), "attention v packing");
    }
    // k and v hold every token; q, o, the scores and the probabilities a task's rows.
    // f32 probabilities are written in place of the scores.
    const std::size_t R = plan.max_rows;
    std::size_t at = 0;
    const auto take = [&](std::size_t bytes) { return std::exchange(at, at + aligned64(bytes)); };
    layout_.q = take(R * dh * bytes_of(types.qk));
    layout_.k = take(scores_pds_.front().weights_desc().get_size());
    const auto packed_bytes = [&](int n, int k) {
        return kernel_ == Kernel::int8   ? packed_b_bytes(n, k)
               : kernel_ == Kernel::bf16 ? packed_bf16_b_bytes(n, k)
                                         : packed_f32_b_bytes(n, k);
    };
    layout_.k_packed = kernel_ != Kernel::onednn ? take(packed_bytes(T, dh)) : 0;
    layout_.v_packed = kernel_ != Kernel::onednn ? take(packed_bytes(dh, T)) : 0;
    layout_.v = take(mix_pds_.front().weights_desc().get_size());
    layout_.staged = pack_pds_.empty() ? 0 : take(std::max(dense_kt.get_size(), dense_v.get_size()));
    layout_.o = take(R * dh * sizeof(float));
    layout_.scores = take(R * T * sizeof(float));
    // + 4: int8_products reads rows of u8 p in groups of 4
    layout_.probabilities = types.pv == Type::f32 ? layout_.scores : take(R * T * bytes_of(types.pv) + 4);
    layout_.q_scales = take(R * sizeof(float));
    layout_.k_scales = take(std::size_t(T) * sizeof(float));
    layout_.v_scales = take(std::size_t(T) * sizeof(float));
    layout_.p_scales = take(R * sizeof(float));
    layout_.lane_maxima = kernel_ != Kernel::onednn ? take(R * 16 * sizeof(float)) : 0;
    layout_.row = take(sizeof(float) * dh);
    layout_.bytes = workspace_bytes_ = at;

    for (int b = 0; b < s.batch; ++b) {
        for (int h = 0; h < s.heads; ++h) {
            const std::int64_t first = std::int64_t(b) * T;
            const auto* q = static_cast<const char*>(qkv.at(first, qkv_stride, h * dh));
            const bool s8 = qkv.type == Type::s8;  // a scale per head's row
            for (Range r : plan.query_parts)
                tasks_.push_back({b * s.heads + h, r, plan.rows_class.at(r.size), q + r.begin * qkv_stride * qkv_bytes_,
                                  q + I * qkv_bytes_, q + 2 * I * qkv_bytes_,
                                  static_cast<char*>(out.at(first + r.begin, I, h * dh)),
                                  s8 ? qkv.scale_at(first + r.begin, qkv_stride, h * dh) : nullptr,
                                  s8 ? qkv.scale_at(first, qkv_stride, I + h * dh) : nullptr,
                                  s8 ? qkv.scale_at(first, qkv_stride, 2 * I + h * dh) : nullptr});
        }
    }
}

void Attention::set_layer(const AttentionLayer* layer) {
    if (qkv_type_ == Type::s8 && layer && (layer->q_norm || layer->k_norm || layer->rope != Rope::none))
        throw std::logic_error("Attention: s8 qkv's q and k are neither normed nor rotated");
    layer_ = layer;
}

void Attention::bind(const ThreadMemory& thread_memory) {
    slots_.clear();
    for (int slot = 0; slot < thread_memory.slots(); ++slot) {
        SlotSteps steps;
        steps.workspace = thread_memory.workspace(slot);
        char* w = steps.workspace;
        for (std::size_t c = 0; c < scores_primitives_.size(); ++c) {
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
        for (std::size_t i = 0; i < pack_pds_.size(); ++i)
            steps.pack.emplace_back(
                pack_primitives_[i],
                std::unordered_map<int, memory>{
                    {DNNL_ARG_FROM, memory(pack_pds_[i].src_desc(), engine_, w + layout_.staged)},
                    {DNNL_ARG_TO, memory(pack_pds_[i].dst_desc(), engine_, w + (i ? layout_.v : layout_.k))}});
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
    const std::int64_t qkv_stride = 3 * I;
    auto* row = reinterpret_cast<float*>(w + layout_.row);
    const int head = task.unit % shape_.heads;
    const auto block = [&](std::size_t offset, Type type, std::size_t scales) {
        return Activation(w + offset, type, reinterpret_cast<float*>(w + scales));
    };
    const bool k_transformed = layer_ && (layer_->k_norm || layer_->rope != Rope::none);
    const bool q_transformed = layer_ && (layer_->q_norm || layer_->rope != Rope::none);
    // our kernels read k and v straight from qkv's rows where nothing
    // transforms them (rows of their own type: f32, bf16; s8 rows at int8,
    // their scales copied), and f32 or bf16 q too
    const bool direct = (kernel_ == Kernel::f32 && qkv_type_ == Type::f32) ||
                        (kernel_ == Kernel::bf16 && qkv_type_ == Type::bf16) ||
                        (kernel_ == Kernel::int8 && qkv_type_ == Type::s8);
    const auto as_s8 = [](const char* rows) { return reinterpret_cast<const std::int8_t*>(rows); };
    const auto as_bf16 = [](const char* rows) { return reinterpret_cast<const std::uint16_t*>(rows); };
    const auto as_f32 = [](const char* rows) { return reinterpret_cast<const float*>(rows); };
    // k's or v's rows, `stride` elements apart, packed for our kernel
    const auto pack_k = [&](const char* rows, std::int64_t stride) {
        if (kernel_ == Kernel::int8) pack_keys(as_s8(rows), stride, T, dh, w + layout_.k_packed);
        if (kernel_ == Kernel::bf16) pack_bf16_keys(as_bf16(rows), stride, T, dh, w + layout_.k_packed);
        if (kernel_ == Kernel::f32) pack_f32_keys(as_f32(rows), stride, T, dh, w + layout_.k_packed);
    };
    const auto pack_v = [&](const char* rows, std::int64_t stride) {
        if (kernel_ == Kernel::int8) pack_values(as_s8(rows), stride, T, dh, w + layout_.v_packed);
        if (kernel_ == Kernel::bf16) pack_bf16_values(as_bf16(rows), stride, T, dh, w + layout_.v_packed);
        if (kernel_ == Kernel::f32) pack_f32_values(as_f32(rows), stride, T, dh, w + layout_.v_packed);
    };
    if (steps.unit != task.unit) {
        const bool packed = !steps.pack.empty();
        if (direct && !k_transformed) {
            pack_k(task.k, qkv_stride);
            if (kernel_ == Kernel::int8) copy_scales(task.k_scales, T, reinterpret_cast<float*>(w + layout_.k_scales));
        } else {
            copy_in(task.k, task.k_scales, T, 0, head, layer_ ? &layer_->k_norm : nullptr,
                    block(packed ? layout_.staged : layout_.k, types_.qk, layout_.k_scales), row);
            if (packed) steps.pack[0].execute(context);
            pack_k(w + layout_.k, dh);
        }
        if (direct) {
            pack_v(task.v, qkv_stride);
            if (kernel_ == Kernel::int8) copy_scales(task.v_scales, T, reinterpret_cast<float*>(w + layout_.v_scales));
        } else {
            copy_in(task.v, task.v_scales, T, 0, head, nullptr,
                    block(packed ? layout_.staged : layout_.v, v_type_, layout_.v_scales), row);
            if (packed) steps.pack[1].execute(context);
            pack_v(w + layout_.v, dh);
        }
        steps.unit = task.unit;
    }
    const int rows = task.queries.size;
    // s8 q is copied as u8 (q + 128) for our kernel, with its scales; f32 and bf16 q read where it is
    const bool q_flipped = direct && kernel_ == Kernel::int8;
    const bool q_direct = direct && kernel_ != Kernel::int8 && !q_transformed;
    if (q_flipped) {
        copy_scales(task.q_scales, rows, reinterpret_cast<float*>(w + layout_.q_scales));
        copy_flipping_sign_bits(as_s8(task.q), qkv_stride, rows, dh, reinterpret_cast<std::uint8_t*>(w + layout_.q));
    } else if (!q_direct) {
        copy_in(task.q, task.q_scales, rows, task.queries.begin, head, layer_ ? &layer_->q_norm : nullptr,
                block(layout_.q, types_.qk, layout_.q_scales), row);
    }
    // our kernels write the scores scaled, with each row's lane maxima: the
    // softmax starts from them where no bias comes between (and, but at f32,
    // where the probabilities are not copied out)
    const bool scaled =
        kernel_ != Kernel::onednn && !(layer_ && layer_->bias) && (!probabilities_ || kernel_ == Kernel::f32);
    auto* scores = reinterpret_cast<float*>(w + layout_.scores);
    auto* lane_maxima = reinterpret_cast<float*>(w + layout_.lane_maxima);
    if (kernel_ == Kernel::int8) {
        auto* q = reinterpret_cast<std::int8_t*>(w + layout_.q);
        if (!q_flipped) flip_sign_bits(q, std::size_t(rows) * dh);
        const ScaledScores scaling{reinterpret_cast<const float*>(w + layout_.q_scales), shape_.scale,
                                   reinterpret_cast<const float*>(w + layout_.k_scales), lane_maxima};
        ProductsOut to_scores;
        to_scores.f32 = scores, to_scores.stride = T, to_scores.scaled = scaled ? &scaling : nullptr;
        int8_products(reinterpret_cast<const std::uint8_t*>(q), dh, rows, w + layout_.k_packed, T, dh, to_scores);
    } else if (kernel_ != Kernel::onednn) {  // bf16, f32
        const ScaledScores scaling{nullptr, shape_.scale, nullptr, lane_maxima};
        ProductsOut to_scores;
        to_scores.f32 = scores, to_scores.stride = T, to_scores.scaled = &scaling;
        const char* q = q_direct ? task.q : w + layout_.q;
        const std::int64_t q_stride = q_direct ? qkv_stride : dh;
        if (kernel_ == Kernel::bf16)
            bf16_products(as_bf16(q), q_stride, rows, w + layout_.k_packed, T, dh, to_scores);
        else
            f32_products(as_f32(q), q_stride, rows, w + layout_.k_packed, T, dh, to_scores);
    } else {
        steps.scores[task.rows_class].execute(context);
    }
    softmax(task, w, scaled);
    // o, times each row's probability scale (p quantized, or f32 or bf16 e
    // from our kernel's scores), into its place as out's type: by our
    // kernels' epilogue (bf16 or f32 rows)
    const bool p_scaled = types_.pv == Type::u8 || (kernel_ != Kernel::onednn && scaled);
    const auto* p_scales = p_scaled ? reinterpret_cast<const float*>(w + layout_.p_scales) : nullptr;
    ProductsOut to_out;
    to_out.row_scales = p_scales;
    if (out_type_ == Type::bf16)
        to_out.bf16 = reinterpret_cast<std::uint16_t*>(task.out), to_out.stride = I;
    else if (kernel_ != Kernel::onednn)
        to_out.f32 = reinterpret_cast<float*>(task.out), to_out.stride = I;
    else
        to_out.f32 = reinterpret_cast<float*>(w + layout_.o), to_out.stride = dh;
    if (kernel_ == Kernel::int8)
        int8_products(reinterpret_cast<const std::uint8_t*>(w + layout_.probabilities), T, rows, w + layout_.v_packed,
                      dh, T, to_out);
    else if (kernel_ == Kernel::bf16)
        bf16_products(reinterpret_cast<const std::uint16_t*>(w + layout_.probabilities), T, rows, w + layout_.v_packed,
                      dh, T, to_out);
    else if (kernel_ == Kernel::f32)
        f32_products(as_f32(w + layout_.probabilities), T, rows, w + layout_.v_packed, dh, T, to_out);
    else
        steps.mix[task.rows_class].execute(context);
    if (kernel_ != Kernel::onednn) return;
    const Activation out(task.out, out_type_);
    const auto* o = reinterpret_cast<const float*>(w + layout_.o);
    for (int r = 0; r < rows; ++r) store_row(o + std::int64_t(r) * dh, dh, out, r, I, 0, p_scales ? p_scales[r] : 1.f);
}

// The probabilities from the scores: f32 or bf16 ones from the scaled scores;
// u8 ones from s8 products, applying q's and k's row scales and v's (ops/softmax.hpp).
void Attention::softmax(const Task& task, char* w, bool scaled) const {
    const int T = shape_.tokens, rows = task.queries.size;
    const int head = task.unit % shape_.heads;
    const float* bias =
        layer_ && layer_->bias ? layer_->bias + (std::int64_t(head) * T + task.queries.begin) * T : nullptr;
    auto* scores = reinterpret_cast<float*>(w + layout_.scores);
    float* probabilities_out = nullptr;
    if (probabilities_) {
        const int image = task.unit / shape_.heads;
        probabilities_out = probabilities_->probs + image * probabilities_->image_stride +
                            (std::int64_t(head) * T + task.queries.begin) * T;
    }
    if (types_.pv != Type::u8) {
        const Activation probabilities(w + layout_.probabilities, types_.pv);
        const auto* lane_maxima = reinterpret_cast<const float*>(w + layout_.lane_maxima);
        auto* p_scales = reinterpret_cast<float*>(w + layout_.p_scales);
        if (scaled && types_.pv == Type::f32) {  // e in place; p v applies 1 / Σ e (in p_scales), as the copy
            softmax_rows_f32_from_scores(scores, rows, T, lane_maxima, p_scales);
            for (int r = 0; probabilities_out && r < rows; ++r)
                store_row(scores + std::int64_t(r) * T, T, Activation(probabilities_out), r, T, 0, p_scales[r]);
            return;
        }
        if (scaled)  // bf16, from our kernel's scores: p v applies 1 / Σ e (in p_scales)
            softmax_rows_bf16_from_scores(scores, rows, T, lane_maxima, static_cast<std::uint16_t*>(probabilities.data),
                                          p_scales);
        else
            softmax_rows(scores, rows, T, probabilities, bias);
        for (int r = 0; probabilities_out && r < rows; ++r)
            load_row(probabilities, r, T, T, probabilities_out + std::int64_t(r) * T);
        return;
    }
    if (scaled)
        return softmax_rows_u8_from_scores(scores, rows, T, reinterpret_cast<const float*>(w + layout_.lane_maxima),
                                           reinterpret_cast<const float*>(w + layout_.v_scales),
                                           reinterpret_cast<std::uint8_t*>(w + layout_.probabilities),
                                           reinterpret_cast<float*>(w + layout_.p_scales));
    const auto* q_scales = reinterpret_cast<const float*>(w + layout_.q_scales);
    softmax_rows_u8(scores, rows, T, q_scales, shape_.scale, reinterpret_cast<const float*>(w + layout_.k_scales), bias,
                    reinterpret_cast<const float*>(w + layout_.v_scales),
                    reinterpret_cast<std::uint8_t*>(w + layout_.probabilities),
                    reinterpret_cast<float*>(w + layout_.p_scales), probabilities_out);
}

void Attention::copy_scales(const float* scales, int rows, float* dst) const {
    const int stride = 3 * shape_.heads;
    for (int r = 0; r < rows; ++r) dst[r] = scales[std::int64_t(r) * stride];
}

void Attention::copy_in(const char* src, const float* scales, int rows, int first_token, int head,
                        const std::optional<NormParams>* norm, const Activation& dst, float* row) const {
    const int dh = shape_.head_dim, T = shape_.tokens;
    const std::int64_t qkv_stride = 3 * shape_.inner();
    const bool normed = norm && norm->has_value();
    const bool rotated = norm && layer_ && layer_->rope != Rope::none;     // q and k only
    if (qkv_type_ == Type::s8) copy_scales(scales, rows, dst.row_scales);  // s8 rows only (set_layer)
    if (dst.type == qkv_type_ && !normed && !rotated)
        return copy_rows(src, qkv_stride * qkv_bytes_, rows, dh * qkv_bytes_, static_cast<char*>(dst.data),
                         dh * qkv_bytes_);
    if (dst.type == Type::s8 && qkv_type_ == Type::bf16 && !normed && !rotated)  // int8
        return quantize_bf16_rows(reinterpret_cast<const std::uint16_t*>(src), qkv_stride, rows, dh,
                                  static_cast<std::int8_t*>(dst.data), dst.row_scales);
    const Activation from(const_cast<char*>(src), qkv_type_);
    const std::int64_t rope_head = rotated && layer_->rope_per_head ? std::int64_t(head) * T * dh : 0;
    for (int r = 0; r < rows; ++r) {
        prefetch_row_ahead(src + r * qkv_stride * qkv_bytes_, qkv_stride * qkv_bytes_, dh * qkv_bytes_);
        load_row(from, r, qkv_stride, dh, row);
        if (normed) normalize_row(**norm, row, row);
        if (rotated) {
            const std::int64_t at = rope_head + std::int64_t(first_token + r) * dh;
            rotate_row(layer_->rope, row, layer_->rope_cos + at, layer_->rope_sin + at, dh);
        }
        store_row(row, dh, dst, r, dh);
    }
}

}  // namespace onevit
