// SIGINT and SIGTERM, taken by a thread of our own with sigwait: blocked in the
// thread that creates the watcher and so in every thread started after it
// (oneTBB's, gRPC's, the I/O threads), so no library's thread is interrupted.
// A second signal while stopping exits at once (status 1).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace onevit::serve {

class SignalWatcher {
public:
    SignalWatcher();  // before any other thread starts
    ~SignalWatcher();

    bool stop_requested() const { return stop_requested_.load(); }
    void wait();  // until SIGINT or SIGTERM

private:
    void watch();

    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> done_{false};
    std::mutex mutex_;
    std::condition_variable signalled_;
    std::thread thread_;
};

}  // namespace onevit::serve
