// Where a model's work runs: one oneTBB task arena, whose threads each execute
// single-threaded oneDNN primitives on tiles of the work.
//
// Debian's oneDNN uses the OpenMP runtime: any thread that executes a primitive
// would become the master of its own OpenMP team, so k TBB workers would start
// k teams and oversubscribe the machine. Instead every thread in the arena runs
// with an OpenMP team of one (set on arena entry, restored on exit), and all
// parallelism comes from TBB tasks over tiles — one scheduler, no spinning
// OpenMP threads competing with TBB workers for cores.
#pragma once

#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <memory>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "runtime/sanitizers.hpp"  // ONEVIT_HB_*: where a run and each task begin and end

namespace onevit {

class Executor {
public:
    // threads <= 0: all cores available to the process.
    Executor(const dnnl::engine& engine, int threads);
    ~Executor();

    int threads() const { return threads_; }
    const dnnl::engine& engine() const { return engine_; }

    // Runs body inside the arena; blocks until it returns. Thread-safe.
    template <class Body>
    void run(Body&& body) {
        int token = 0;
        ONEVIT_HB_RELEASE(&token);
        arena_.execute([&] {
            ONEVIT_HB_ACQUIRE(&token);
            body();
            ONEVIT_HB_RELEASE(&token);
        });
        ONEVIT_HB_ACQUIRE(&token);
    }

    // Inside run(): calls item(i) for i in [0, count), in contiguous chunks per
    // thread, so neighbouring tiles (sharing weights) stay on one core.
    template <class Item>
    void parallel(int count, const Item& item) {
        if (count == 1) return item(0);
        int fork = 0, join = 0;
        // The index form: only TBB's own code touches the ranges it splits and
        // hands between threads (TSan cannot see that hand-off; tests/tsan.supp).
        // The body reads its captures before it can acquire: not instrumented.
        const auto body = [&](int i) ONEVIT_NO_TSAN {
            ONEVIT_HB_ACQUIRE(&fork);
            item(i);
            ONEVIT_HB_RELEASE(&join);
        };
        ONEVIT_HB_RELEASE(&fork);
        tbb::parallel_for(0, count, body, tbb::static_partitioner());
        ONEVIT_HB_ACQUIRE(&join);
    }

    // Inside run(): the index of the calling thread's arena slot, in [0, threads()),
    // for per-thread scratch memory; and that slot's oneDNN stream.
    static int slot();
    dnnl::stream& stream() { return streams_[slot()]; }

    // oneDNN primitives fix their OpenMP team size when they are created, from
    // the creating thread: they must be created inside run(), where it is 1,
    // or every tile would start a team of its own. Throws if called elsewhere.
    static void require_inside_run();

private:
    class SingleThreadedOpenMP : public tbb::task_scheduler_observer {
    public:
        explicit SingleThreadedOpenMP(tbb::task_arena& arena);
        ~SingleThreadedOpenMP() override;
        void on_scheduler_entry(bool is_worker) override;
        void on_scheduler_exit(bool is_worker) override;
    };

    dnnl::engine engine_;
    int threads_;
    tbb::task_arena arena_;
    std::unique_ptr<SingleThreadedOpenMP> observer_;
    std::vector<dnnl::stream> streams_;
};

}  // namespace onevit
