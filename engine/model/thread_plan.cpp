#include "model/thread_plan.hpp"

#include <algorithm>
#include <string>

#include <oneapi/tbb/info.h>

#include "model/graph.hpp"

namespace onevit {

namespace {

// One core's f32 matmul rate (docs/performance.md, "The cost model"): the
// model's multiply-accumulates become milliseconds at this rate. Only the
// ratio to the phase start-up cost below matters for the choice.
constexpr double kCoreMacsPerMs = 55e6;
// Starting and joining a parallel phase grows with the threads that take part
// (calibrated on 2 cores only: docs/performance.md).
constexpr double kPhaseStartMs = 0.002;
constexpr double kPhaseStartPerThreadMs = 0.0001;
// A row loop of ours (norms, conversions, the int8 epilogue's extra pass):
// per value, about this many multiply-accumulates of a matmul's time.
constexpr double kRowLoopMacsPerValue = 4;
// Within this of the best, fewer threads are taken: they leave cores to the
// rest of the machine.
constexpr double kTolerance = 0.005;
// Within this of the best, fewer streams are taken: each stream keeps activations
// of its own, cache and memory traffic the model does not see (docs/performance.md).
constexpr double kStreamTolerance = 0.02;

double phase_start_ms(int threads) { return kPhaseStartMs + kPhaseStartPerThreadMs * threads; }

}  // namespace

int available_cores() { return tbb::info::default_concurrency(); }

// The sum over the model's description: each linear layer and attention at the
// cost its tiling minimises at its precision, the norms and conversions as row
// loops spread over the threads, and the start of every parallel phase.
double modelled_latency_ms(const Architecture& a, int batch, int threads, Precision precision) {
    const ModelGraph g = describe(a, precision);
    const auto linear = [&](const LinearShape& shape, int rows_per_image) {
        return modelled_linear_macs(shape, {rows_per_image, threads}, rows_per_image * batch);
    };
    double macs = 0;
    if (g.patch_embed) {
        const PatchEmbedDesc& p = *g.patch_embed;
        macs += linear({p.grid.patch_dim(), p.dim, p.bias, Epilogue::none, {p.type}}, p.grid.patches());
    }
    for (const LinearDesc* l : g.linears()) macs += linear(l->shape, l->rows_per_image);
    const double row_values = double(batch) * a.tokens() * a.dim;
    for (const BlockDesc& b : g.blocks) {
        const AttentionTypes& t = b.attention.types;  // bf16 and int8 run 2x and 4x as many per cycle
        const double speedup = t.qk == Activation::Type::s8 ? 4 : t.qk == Activation::Type::bf16 ? 2 : 1;
        macs += modelled_attention_macs(b.attention.shape(batch), threads) / speedup;
        macs += 2 * row_values * kRowLoopMacsPerValue / threads;  // norm1, norm2
    }
    // Phases: patches, tokens, the first row chain, then per block attention
    // and a row chain, then pooling and the head.
    const int phases = 5 + 2 * a.depth;
    return macs / kCoreMacsPerMs + phases * phase_start_ms(threads);
}

ThreadPlan choose_thread_plan(const Architecture& arch, int batch, Hint hint, int cores, int streams,
                              Precision precision) {
    if (cores < 1) throw Error("cores must be >= 1, got " + std::to_string(cores));
    if (streams > cores)
        throw Error(std::to_string(streams) + " streams need at least as many threads, got " + std::to_string(cores));
    const auto plan = [&](int s, int t) {
        const double ms = modelled_latency_ms(arch, batch, t, precision);
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
        if (p.modelled_images_per_s >= best * (1 - kStreamTolerance)) chosen = &p;
    return *chosen;
}

}  // namespace onevit
