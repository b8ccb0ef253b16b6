// onevit bench --emulate-threads (internal): a T-thread plan timed on one core.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "onevit/model_info.hpp"

namespace onevit {

// A T-thread latency plan measured on one core (`onevit bench --emulate-threads`):
// the model is loaded and planned exactly as for a stream of T threads, then
// each parallel phase's tiles run one after another on one thread; a phase
// takes as long as the busiest thread's share of its tiles (the executor's
// static partition), each share at its fastest over the runs, and the
// emulated latency is the sum over the phases.
// Left out, so a real T-core run is slower: memory-bandwidth and shared-cache
// contention between cores, and the cost of waking and joining T threads at
// each phase.
struct EmulatedPhaseTime {
    std::string ops;  // the ops the phase runs, "blocks.0.norm1 + blocks.0.attn.qkv"
    int tiles = 0;
    double slowest_thread_ms = 0;  // the busiest thread's share
    double all_tiles_ms = 0;       // all shares
    // Each op's time over all tiles, at its fastest over the runs, by name: the
    // per-op breakdown (each op timed inside its chain, so its rows come from
    // the cache as they do in a real run).
    std::vector<std::pair<std::string, double>> op_ms;
};
struct EmulatedForward {
    Architecture arch;
    int threads = 0;
    int batch = 0;
    int runs = 0;
    double latency_ms = 0;                  // sum of the phases' slowest_thread_ms
    double work_ms = 0;                     // sum of the phases' all_tiles_ms: the one-core time of this plan
    std::vector<EmulatedPhaseTime> phases;  // in the forward's order
};
EmulatedForward emulate_forward(const std::string& model_path, int batch, int threads, int runs,
                                Precision precision = Precision::f32);

}  // namespace onevit
