#include "ops/attention.hpp"

#include <cstring>
#include <map>

#include "ops/kernel_check.hpp"
#include "ops/quantize.hpp"
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
                               Activation::Type out, std::size_t* scratchpad_bytes) {
    const int T = s.tokens, dh = s.head_dim;
    const memory::desc q_md({rows, dh}, qkv, {dh, 1});
    const memory::desc kt_md({dh, T}, qkv, {1, dh});  // kᵀ: a view of the dense k block
    const memory::desc v_md({T, dh}, qkv, {dh, 1});
    const memory::desc scores_md = strided_md({rows, T}, {T, 1});
    const memory::desc probabilities_md({rows, T}, qkv, {T, 1});
    const memory::desc o_md({rows, dh}, out, {dh, 1});
    dnnl::primitive_attr scaled = user_scratchpad_attr();
    scaled.set_output_scales(0, {s.scale});
    PrimitiveDescs pds{
        checked(dnnl::matmul::primitive_desc(dnnl::matmul::desc(q_md, kt_md, scores_md), scaled, engine),
                "attention scores matmul"),
        checked(dnnl::matmul::primitive_desc(dnnl::matmul::desc(probabilities_md, v_md, o_md), user_scratchpad_attr(),
                                             engine),
                "attention mix matmul")};
    for (std::size_t bytes : {pds.scores.scratchpad_desc().get_size(), pds.mix.scratchpad_desc().get_size()})
        *scratchpad_bytes = std::max(*scratchpad_bytes, bytes);
    return pds;
}

// The tasks' query ranges, and one set of descriptors per distinct range height.
struct QueryPlan {
    std::vector<Range> query_parts;
    std::map<int, int> rows_class;  // query rows → class
    std::vector<PrimitiveDescs> pds;  // by class
};

QueryPlan plan_queries(const dnnl::engine& engine, int threads, const AttentionShape& s, Activation::Type qkv,
                       Activation::Type out, std::size_t* scratchpad_bytes) {
    QueryPlan plan{split_evenly(s.tokens, choose_query_parts(s, threads)), {}, {}};
    for (Range r : plan.query_parts) {
        if (plan.rows_class.count(r.size)) continue;
        plan.rows_class.emplace(r.size, static_cast<int>(plan.pds.size()));
        plan.pds.push_back(primitive_descs(engine, s, r.size, qkv, out, scratchpad_bytes));
    }
    return plan;
}

}  // namespace

double modelled_attention_macs(const AttentionShape& shape, int threads) {
    double cost = 0;
    choose_query_parts(shape, threads, &cost);
    return cost;
}

void AttentionSteps::plan(const dnnl::engine& engine, int threads, const AttentionShape& shape, Activation::Type qkv,
                          Activation::Type out) {
    std::size_t scratchpad_bytes = 0;
    plan_queries(engine, threads, shape, qkv, out, &scratchpad_bytes);
}

AttentionSteps::AttentionSteps(const dnnl::engine& engine, int threads, const AttentionShape& s, Activation qkv,
                               Activation out)
    : shape_(s), qkv_type_(qkv.type), qkv_bytes_(Activation::bytes_per_element(qkv.type)), out_bytes_(Activation::bytes_per_element(out.type)) {
    const int T = s.tokens, dh = s.head_dim, I = s.inner();
    const std::int64_t qkv_stride = 3 * I;
    const QueryPlan plan = plan_queries(engine, threads, s, qkv.type, out.type, &scratchpad_bytes_);
    const std::vector<Range>& query_parts = plan.query_parts;
    const std::map<int, int>& rows_class = plan.rows_class;
    const std::vector<PrimitiveDescs>& pds = plan.pds;
    std::vector<TaskSteps> primitives;  // by rows class, not bound to memory yet
    for (const PrimitiveDescs& p : pds)
        primitives.push_back({{dnnl::matmul(p.scores), {}}, {dnnl::matmul(p.mix), {}}});

    // Every block is sized for all T rows; each rows class views its first rows.
    const std::size_t block = std::size_t(T) * dh;
    workspaces_.resize(threads);
    for (Workspace& w : workspaces_) {
        w.q = AlignedBuffer(block), w.k = AlignedBuffer(block), w.v = AlignedBuffer(block), w.o = AlignedBuffer(block);
        w.scores = AlignedBuffer(std::size_t(T) * T);
        const bool in_place = qkv.type == memory::data_type::f32;
        if (!in_place) w.probabilities = AlignedBuffer(std::size_t(T) * T);
        for (std::size_t c = 0; c < pds.size(); ++c) {
            TaskSteps steps = primitives[c];
            const memory scores(pds[c].scores.dst_desc(), engine, w.scores.data());
            const memory probabilities(pds[c].mix.src_desc(), engine,
                                       in_place ? w.scores.data() : w.probabilities.data());
            steps.scores.args = {{DNNL_ARG_SRC, memory(pds[c].scores.src_desc(), engine, w.q.data())},
                                 {DNNL_ARG_WEIGHTS, memory(pds[c].scores.weights_desc(), engine, w.k.data())},
                                 {DNNL_ARG_DST, scores}};
            steps.mix.args = {{DNNL_ARG_SRC, probabilities},
                              {DNNL_ARG_WEIGHTS, memory(pds[c].mix.weights_desc(), engine, w.v.data())},
                              {DNNL_ARG_DST, memory(pds[c].mix.dst_desc(), engine, w.o.data())}};
            for (Step* step : {&steps.scores, &steps.mix}) step->args[DNNL_ARG_SCRATCHPAD] = memory();
            w.steps.push_back(std::move(steps));
        }
    }

    for (int b = 0; b < s.batch; ++b) {
        for (int h = 0; h < s.heads; ++h) {
            const auto* q = static_cast<const char*>(qkv.at(std::int64_t(b) * T, qkv_stride, h * dh));
            for (Range r : query_parts)
                tasks_.push_back({b * s.heads + h, r, rows_class.at(r.size), q + r.begin * qkv_stride * qkv_bytes_,
                                  q + I * qkv_bytes_, q + 2 * I * qkv_bytes_,
                                  static_cast<char*>(out.at(std::int64_t(b) * T + r.begin, I, h * dh))});
        }
    }
}

void AttentionSteps::run(Executor& executor, std::vector<dnnl::memory>& scratchpads,
                         const ProbabilitiesOut* probabilities) {
    for (Workspace& w : workspaces_) w.unit = -1;  // qkv holds a new layer's values
    executor.parallel(static_cast<int>(tasks_.size()), [&](int i) {
        const int slot = Executor::slot();
        run_task(tasks_[i], workspaces_[slot], executor.stream(), scratchpads[slot], probabilities);
    });
}

void AttentionSteps::run_task(const Task& task, Workspace& w, dnnl::stream& stream, const dnnl::memory& scratchpad,
                              const ProbabilitiesOut* probabilities) {
    const int T = shape_.tokens, dh = shape_.head_dim, I = shape_.inner();
    const std::int64_t qkv_stride = 3 * I * qkv_bytes_, block_stride = dh * qkv_bytes_;
    const auto block = [](AlignedBuffer& buffer) { return reinterpret_cast<char*>(buffer.data()); };
    if (w.unit != task.unit) {
        copy_rows(task.k, qkv_stride, T, block_stride, block(w.k), block_stride);
        copy_rows(task.v, qkv_stride, T, block_stride, block(w.v), block_stride);
        w.unit = task.unit;
    }
    copy_rows(task.q, qkv_stride, task.queries.size, block_stride, block(w.q), block_stride);
    TaskSteps& steps = w.steps[task.rows_class];
    steps.scores.execute(stream, scratchpad);
    // The probabilities have qkv's type: f32 in place of the scores, or bf16.
    const bool in_place = w.probabilities.size() == 0;
    softmax_rows(w.scores.data(), task.queries.size, T,
                 Activation(in_place ? w.scores.data() : w.probabilities.data(), qkv_type_));
    if (probabilities) copy_out_probabilities(task, w, *probabilities);
    steps.mix.execute(stream, scratchpad);
    copy_rows(block(w.o), dh * out_bytes_, task.queries.size, dh * out_bytes_, task.out, I * out_bytes_);
}

// The probabilities as the mix matmul reads them: f32 in place of the scores,
// or bf16 (where qkv is bf16: at int8 precision), widened here.
void AttentionSteps::copy_out_probabilities(const Task& task, Workspace& w, const ProbabilitiesOut& where) const {
    const int T = shape_.tokens;
    const int image = task.unit / shape_.heads, head = task.unit % shape_.heads;
    float* dst = where.probs + image * where.image_stride + (std::int64_t(head) * T + task.queries.begin) * T;
    if (w.probabilities.size() == 0) {
        std::memcpy(dst, w.scores.data(), sizeof(float) * task.queries.size * T);
        return;
    }
    const Activation bf16(w.probabilities.data(), memory::data_type::bf16);
    for (int row = 0; row < task.queries.size; ++row) load_row(bf16, row, T, T, dst + std::int64_t(row) * T);
}

}  // namespace onevit
