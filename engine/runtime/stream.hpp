// A stream: one task arena with a thread of its own that takes jobs from a
// queue and runs each inside the arena (OpenVINO's CPU "streams"). Latency
// mode is one stream with every core; throughput mode is several streams,
// each running whole requests, so small models keep all cores busy.
//
// The driver thread joins its arena as the arena's master, so a stream of T
// threads uses its driver plus T - 1 TBB workers: streams never oversubscribe
// the cores, and TBB's worker pool (cores - 1 threads) always suffices.
//
// Between jobs that come one at a time (a server at concurrency 1), the
// arena's workers would go to sleep, and each run would begin by waking them
// (on a VM, their idle cores too), where a back-to-back loop finds them still
// spinning. So after a job that leaves the queue empty, a stream of several
// threads keeps its workers spinning for the next job for up to kLinger
// (OpenMP's KMP_BLOCKTIME idea), then lets them sleep as before. Its own thread
// sleeps meanwhile (its wake costs little), leaving a core to the threads that
// bring the next request. A stream of one thread has no workers to keep.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "runtime/executor.hpp"

namespace onevit {

class Stream {
public:
    Stream(const dnnl::engine& engine, int threads);
    ~Stream();  // finishes the queued jobs, then stops
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    Executor& executor() { return executor_; }
    // Queues job to run inside the arena on the stream's thread. Jobs handle
    // their own errors (Model wraps each in a packaged_task).
    void post(std::function<void()> job);
    // Jobs queued or running: Model sends a request to the least busy stream.
    int load() const;

private:
    static constexpr std::chrono::microseconds kLinger{1000};
    void drive();
    // From a job that leaves the queue empty, inside the arena, under mutex_: a
    // worker spins until a job is posted after `posted`, or for kLinger.
    void linger(unsigned posted);
    void spin_until_posted(unsigned posted);  // on the worker

    Executor executor_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    int running_ = 0;
    bool stopping_ = false;
    std::atomic<unsigned> posted_{0};  // jobs posted (and the stop): a lingering worker stops when it moves
    std::atomic<int> lingering_{0};    // worker tasks queued or lingering: the destructor waits for them
    int linger_token_ = 0;             // TSan: the linger task's hand-off to the worker
    std::thread driver_;
};

}  // namespace onevit
