// A stream: one task arena with a thread of its own that takes jobs from a
// queue and runs each inside the arena (OpenVINO's CPU "streams"). Latency
// mode is one stream with every core; throughput mode is several streams,
// each running whole requests, so small models keep all cores busy.
//
// The driver thread joins its arena as the arena's master, so a stream of T
// threads uses its driver plus T - 1 TBB workers: streams never oversubscribe
// the cores, and TBB's worker pool (cores - 1 threads) always suffices.
#pragma once

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
    // Runs job inside the arena on the calling thread, if the stream is idle
    // (nothing queued or running), and returns true; false, running nothing, if
    // not. For a caller that would only wait for the job: the stream's thread is
    // not woken (onevit serve's lone requests; docs/serve.md). Jobs posted
    // meanwhile wait for it.
    bool run_here_if_idle(const std::function<void()>& job);
    // Jobs queued or running: Model sends a request to the least busy stream.
    int load() const;

private:
    void drive();

    Executor executor_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    int running_ = 0;
    bool stopping_ = false;
    std::thread driver_;
};

}  // namespace onevit
