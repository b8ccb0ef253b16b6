#include "runtime/executor.hpp"

#include <omp.h>

#include <oneapi/tbb/info.h>

#include <stdexcept>

#include "runtime/sanitizers.hpp"

// LeakSanitizer, in ASan builds: oneTBB 2021.8 can leak the 40-byte proxy of a
// task_scheduler_observer that is destroyed while a worker thread still refers
// to it (observer_list::clear skips proxies whose observer is gone). Seen once
// in many CI runs, on an Executor's destruction; TBB's, and not ours to free.
#ifdef ONEVIT_ASAN
extern "C" const char* __lsan_default_suppressions() { return "leak:tbb::detail::r1::observe\n"; }
#endif

namespace onevit {

namespace {
// The OpenMP team size a thread had before it entered an arena; 0 = not inside one.
thread_local int saved_omp_threads = 0;
thread_local int arena_depth = 0;
}  // namespace

Executor::SingleThreadedOpenMP::SingleThreadedOpenMP(tbb::task_arena& arena) : tbb::task_scheduler_observer(arena) {
    observe(true);
}

Executor::SingleThreadedOpenMP::~SingleThreadedOpenMP() { observe(false); }

void Executor::SingleThreadedOpenMP::on_scheduler_entry(bool) {
    if (arena_depth++ == 0) saved_omp_threads = omp_get_max_threads();
    omp_set_num_threads(1);
}

void Executor::SingleThreadedOpenMP::on_scheduler_exit(bool) {
    if (--arena_depth == 0) omp_set_num_threads(saved_omp_threads);
}

Executor::Executor(const dnnl::engine& engine, int threads)
    : engine_(engine), threads_(threads > 0 ? threads : tbb::info::default_concurrency()), arena_(threads_) {
    arena_.initialize();
    observer_ = std::make_unique<SingleThreadedOpenMP>(arena_);
    for (int i = 0; i < threads_; ++i) streams_.emplace_back(engine_);
}

Executor::~Executor() { observer_.reset(); }

int Executor::slot() { return tbb::this_task_arena::current_thread_index(); }

void Executor::require_inside_run() {
    if (arena_depth == 0 || omp_get_max_threads() != 1)
        throw std::logic_error("onevit: oneDNN primitive created outside Executor::run");
}

}  // namespace onevit
