#include "ops/attention.hpp"

#include <map>

namespace onevit {

namespace {

using dnnl::memory;

constexpr double kTaskOverhead = 2e4;  // per-task dispatch cost, in multiply-accumulates

// Query rows per task: enough tasks to keep every thread busy, no more.
int choose_query_parts(const AttentionShape& s, int threads) {
    const int units = s.batch * s.heads;
    int best = 1;
    double best_cost = 0;
    for (int parts = 1; parts <= s.tokens && parts <= 64; ++parts) {
        const double rows = (s.tokens + parts - 1) / parts;
        const double cost = phase_cost(units * parts, threads, 2 * rows * s.tokens * s.head_dim, kTaskOverhead);
        if (parts == 1 || cost < best_cost) best = parts, best_cost = cost;
    }
    return best;
}

}  // namespace

AttentionSteps::AttentionSteps(const dnnl::engine& engine, int threads, const AttentionShape& s, float* qkv,
                               float* out) {
    const int T = s.tokens, dh = s.head_dim, I = s.inner();
    const std::int64_t qkv_stride = 3 * I;
    const std::vector<Range> query_parts = split_evenly(T, choose_query_parts(s, threads));

    struct Primitives {
        dnnl::matmul::primitive_desc scores;
        dnnl::softmax_forward::primitive_desc softmax;
        dnnl::matmul::primitive_desc mix;
        int rows_class;
    };
    std::map<int, Primitives> by_rows;
    for (Range r : query_parts) {
        if (by_rows.count(r.size)) continue;
        const memory::desc q_md = strided_md({r.size, dh}, {qkv_stride, 1});
        const memory::desc kt_md = strided_md({dh, T}, {1, qkv_stride});  // kᵀ: a view of k's rows
        const memory::desc v_md = strided_md({T, dh}, {qkv_stride, 1});
        const memory::desc scores_md = strided_md({r.size, T}, {T, 1});
        const memory::desc out_md = strided_md({r.size, dh}, {I, 1});

        dnnl::primitive_attr scaled = user_scratchpad_attr();
        scaled.set_output_scales(0, {s.scale});
        Primitives p{
            dnnl::matmul::primitive_desc(dnnl::matmul::desc(q_md, kt_md, scores_md), scaled, engine),
            dnnl::softmax_forward::primitive_desc(
                dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, scores_md, 1),
                user_scratchpad_attr(), engine),
            dnnl::matmul::primitive_desc(dnnl::matmul::desc(scores_md, v_md, out_md), user_scratchpad_attr(),
                                         engine),
            static_cast<int>(by_rows.size())};
        for (std::size_t bytes : {p.scores.scratchpad_desc().get_size(), p.softmax.scratchpad_desc().get_size(),
                                  p.mix.scratchpad_desc().get_size()})
            scratchpad_bytes_ = std::max(scratchpad_bytes_, bytes);
        by_rows.emplace(r.size, std::move(p));
    }

    const std::int64_t block = std::int64_t(T) * T;
    scores_storage_.resize(block * threads);
    scores_.resize(threads);
    for (int slot = 0; slot < threads; ++slot) {
        scores_[slot].resize(by_rows.size());
        for (auto& [rows, p] : by_rows)
            scores_[slot][p.rows_class] = memory(p.scores.dst_desc(), engine, scores_storage_.data() + slot * block);
    }

    for (int b = 0; b < s.batch; ++b) {
        for (int h = 0; h < s.heads; ++h) {
            float* q = qkv + std::int64_t(b) * T * qkv_stride + h * dh;
            float* k = q + I;
            float* v = q + 2 * I;
            for (Range r : query_parts) {
                const Primitives& p = by_rows.at(r.size);
                Task task{{dnnl::matmul(p.scores), {}}, {dnnl::softmax_forward(p.softmax), {}},
                          {dnnl::matmul(p.mix), {}}, p.rows_class};
                task.scores.args[DNNL_ARG_SRC] = memory(p.scores.src_desc(), engine, q + r.begin * qkv_stride);
                task.scores.args[DNNL_ARG_WEIGHTS] = memory(p.scores.weights_desc(), engine, k);
                task.scores.args[DNNL_ARG_DST] = memory();
                task.softmax.args[DNNL_ARG_SRC] = memory();
                task.softmax.args[DNNL_ARG_DST] = memory();
                task.mix.args[DNNL_ARG_SRC] = memory();
                task.mix.args[DNNL_ARG_WEIGHTS] = memory(p.mix.weights_desc(), engine, v);
                task.mix.args[DNNL_ARG_DST] =
                    memory(p.mix.dst_desc(), engine, out + (std::int64_t(b) * T + r.begin) * I + h * dh);
                for (Step* step : {&task.scores, &task.softmax, &task.mix}) step->args[DNNL_ARG_SCRATCHPAD] = memory();
                tasks_.push_back(std::move(task));
            }
        }
    }
}

void AttentionSteps::run(Executor& executor, std::vector<dnnl::memory>& scratchpads) {
    executor.parallel(static_cast<int>(tasks_.size()), [&](int i) {
        Task& task = tasks_[i];
        const int slot = Executor::slot();
        const dnnl::memory& scores = scores_[slot][task.rows_class];
        task.scores.args[DNNL_ARG_DST] = scores;
        task.softmax.args[DNNL_ARG_SRC] = scores;
        task.softmax.args[DNNL_ARG_DST] = scores;
        task.mix.args[DNNL_ARG_SRC] = scores;
        dnnl::stream& stream = executor.stream();
        task.scores.execute(stream, scratchpads[slot]);
        task.softmax.execute(stream, scratchpads[slot]);
        task.mix.execute(stream, scratchpads[slot]);
    });
}

}  // namespace onevit
