#include "runtime/executor.hpp"

#include <omp.h>

#include <oneapi/tbb/info.h>

#include <ctime>
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

Executor::SingleThreadedOpenMP::SingleThreadedOpenMP(tbb::task_arena& arena)
    : tbb::task_scheduler_observer(arena) {
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
    : Executor(engine, threads > 0 ? threads : tbb::info::default_concurrency(), false) {}

Executor::Executor(const dnnl::engine& engine, EmulatedThreads emulated) : Executor(engine, emulated.threads, true) {}

Executor::Executor(const dnnl::engine& engine, int threads, bool emulated)
    : engine_(engine), threads_(threads), emulated_(emulated), arena_(emulated ? 1 : threads) {
    arena_.initialize();
    observer_ = std::make_unique<SingleThreadedOpenMP>(arena_);
    for (int i = 0; i < threads_; ++i) streams_.emplace_back(engine_);
}

Executor::~Executor() { observer_.reset(); }

double Executor::thread_cpu_ms() {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

int Executor::slot() { return tbb::this_task_arena::current_thread_index(); }

void Executor::require_inside_run() {
    if (arena_depth == 0 || omp_get_max_threads() != 1)
        throw std::logic_error("onevit: oneDNN primitive created outside Executor::run");
}

}  // namespace onevit
