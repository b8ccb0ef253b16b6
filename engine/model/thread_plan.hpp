// How many threads and streams a model runs on where Options leave it open
// (threads = 0, or streams = 0 with the throughput hint), chosen per model and
// batch from a cost model of its forward pass: each phase's cost is the one its
// op's tiling minimises (work of the busiest thread plus a per-tile overhead,
// in multiply-accumulates of one core), plus the cost of starting and joining
// the threads that run the phase. Fewer threads can be faster: a ViT-Ti at
// batch 1 has too little work per phase to keep 64 cores busy.
// Internal: the engine (Model::load), onevit info --plan and bench use it.
#pragma once

#include "onevit/model.hpp"
#include "onevit/model_info.hpp"

namespace onevit {

struct ThreadPlan {
    int streams = 1;
    int threads_per_stream = 1;
    double modelled_ms = 0;            // one forward of the batch on one stream
    double modelled_images_per_s = 0;  // all streams together
};

// The cores this process may use (what threads = 0 means at most).
int available_cores();

// The modelled latency of one forward of `batch` images on a stream of `threads` threads, at `precision`.
double modelled_latency_ms(const Architecture& arch, int batch, int threads, Precision precision = Precision::f32);

// latency: one stream, the thread count t <= cores of least modelled latency
// (the fewest threads within 0.5 % of it). throughput: streams x threads <= cores
// of most modelled images/s (the fewest streams within 2 % of it). An explicit
// streams (> 0) fixes the streams; threads are then cores / streams each.
ThreadPlan choose_thread_plan(const Architecture& arch, int batch, Hint hint, int cores, int streams = 0,
                              Precision precision = Precision::f32);

}  // namespace onevit
