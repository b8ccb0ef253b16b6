#include "model/thread_plan.hpp"

#include <algorithm>
#include <string>

#include <oneapi/tbb/info.h>

#include "ops/attention.hpp"
#include "ops/linear.hpp"

namespace onevit {

namespace {

// One core's f32 brgemm speed, measured here (oneDNN 2.6.3, 1 thread, 192–3072
// wide layers at 4–197 rows: 107–117 GFLOP/s, flat in the row count): the cost
// model's multiply-accumulates become milliseconds at this rate. Only the ratio
// to the phase start-up cost below matters for the choice.
constexpr double kCoreMacsPerMs = 55e6;
// Starting and joining a parallel phase: TBB wakes the threads and each takes
// its share, so the cost grows with the threads that take part. Not calibrated
// beyond 2 cores (no many-core machine measured yet): a few microseconds, as
// oneTBB's fork-join is on 2 cores here.
constexpr double kPhaseStartMs = 0.002;
constexpr double kPhaseStartPerThreadMs = 0.0001;
// Within this of the best, fewer threads (or streams) are taken: they leave
// cores to the rest of the machine.
constexpr double kTolerance = 0.005;

double phase_start_ms(int threads) { return kPhaseStartMs + kPhaseStartPerThreadMs * threads; }

}  // namespace

int available_cores() { return tbb::info::default_concurrency(); }

double modelled_latency_ms(const Architecture& a, int batch, int threads) {
    const int rows = batch * a.tokens(), D = a.dim;
    const auto linear = [&](int in, int out, int typical_rows, int run_rows) {
        return modelled_linear_macs(LinearShape{in, out, true, Epilogue::none}, {typical_rows, threads}, run_rows);
    };
    double macs = linear(a.patch_dim(), D, a.patch_tokens(), batch * a.patch_tokens());
    double block = linear(D, 3 * a.inner_dim(), a.tokens(), rows) +
                   modelled_attention_macs({batch, a.tokens(), a.heads, a.head_dim, a.attn_scale}, threads) +
                   linear(a.mlp_dim, D, a.tokens(), rows) + linear(D, a.mlp_dim, a.tokens(), rows);
    if (a.attn_proj) block += linear(a.inner_dim(), D, a.tokens(), rows);
    macs += a.depth * block;
    if (a.num_classes > 0) macs += linear(D, a.num_classes, 1, batch);  // none: an embedding model
    // Phases: patches, tokens, the first row chain, then per block attention
    // and a row chain, then pooling and the head.
    const int phases = 5 + 2 * a.depth;
    return macs / kCoreMacsPerMs + phases * phase_start_ms(threads);
}

ThreadPlan choose_thread_plan(const Architecture& arch, int batch, Hint hint, int cores, int streams) {
    if (cores < 1) throw Error("cores must be >= 1, got " + std::to_string(cores));
    if (streams > cores)
        throw Error(std::to_string(streams) + " streams need at least as many threads, got " + std::to_string(cores));
    const auto plan = [&](int s, int t) {
        const double ms = modelled_latency_ms(arch, batch, t);
        return ThreadPlan{s, t, ms, s * batch * 1e3 / ms};
    };
    if (streams > 0) return plan(streams, cores / streams);
    std::vector<ThreadPlan> plans;
    for (int t = 1; t <= cores; ++t) plans.push_back(plan(hint == Hint::latency ? 1 : cores / t, t));
    if (hint == Hint::latency) {
        double best = plans.front().modelled_ms;
        for (const ThreadPlan& p : plans) best = std::min(best, p.modelled_ms);
        for (const ThreadPlan& p : plans)  // by threads, ascending
            if (p.modelled_ms <= best * (1 + kTolerance)) return p;
    }
    double best = 0;
    for (const ThreadPlan& p : plans) best = std::max(best, p.modelled_images_per_s);
    const ThreadPlan* chosen = &plans.front();
    for (const ThreadPlan& p : plans)  // fewer streams as threads grow: keep the last (fewest streams) within tolerance
        if (p.modelled_images_per_s >= best * (1 - kTolerance)) chosen = &p;
    return *chosen;
}

}  // namespace onevit
