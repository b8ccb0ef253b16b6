// Figures for benchmarks: the work of a forward pass, and the speed this
// machine's oneDNN reaches on a plain matmul — the limit a ViT runs against.
#pragma once

#include <string>
#include <vector>

#include "onevit/model.hpp"
#include "onevit/model_info.hpp"

namespace onevit {

// Floating-point operations of one image's forward pass. Only the matrix
// products count (2 per multiply-add), as papers and timm's GMACs tables do:
// LayerNorm, softmax, GELU and the residual adds are well under 1%.
// ViT-B/16 at 224: 17.6 GMACs = 35.1 GFLOP.
double forward_flops(const Architecture& arch);

// GFLOP/s of oneDNN's own matmul on `threads` OpenMP threads, best of a few
// runs of a ViT-B MLP-sized product (1576 × 768 × 3072), in the data types
// the engine's linear layers use at `precision`: f32; bf16 · bf16 → f32; or
// s8 · s8 → f32 (a multiply-add counts 2 operations at every precision). Takes ~0.5 s.
double matmul_peak_gflops(int threads, Precision precision = Precision::f32);
// The same on the calling thread alone, timed in its CPU time (as emulate_forward
// times tiles: other processes on a shared machine do not count).
double matmul_peak_gflops_thread_cpu(Precision precision = Precision::f32);

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
    int tiles = 0;
    double slowest_thread_ms = 0;  // the busiest thread's share
    double all_tiles_ms = 0;       // all shares
};
struct EmulatedForward {
    Architecture arch;
    int threads = 0;
    int batch = 0;
    int runs = 0;
    double latency_ms = 0;  // sum of the phases' slowest_thread_ms
    double work_ms = 0;     // sum of the phases' all_tiles_ms: the one-core time of this plan
    std::vector<EmulatedPhaseTime> phases;  // in the forward's order
};
EmulatedForward emulate_forward(const std::string& model_path, int batch, int threads, int runs,
                                Precision precision = Precision::f32);

}  // namespace onevit
