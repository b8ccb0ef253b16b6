#include "runtime/stream.hpp"

#include <immintrin.h>

#include <oneapi/tbb/task_arena.h>

#include <thread>

namespace onevit {

Stream::Stream(const dnnl::engine& engine, int threads) : executor_(engine, threads), driver_([this] { drive(); }) {}

Stream::~Stream() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        posted_.fetch_add(1, std::memory_order_release);  // a lingering worker stops now
    }
    wake_.notify_one();
    driver_.join();
    while (lingering_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
}

void Stream::post(std::function<void()> job) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        jobs_.push_back(std::move(job));
        posted_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_one();
}

int Stream::load() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(jobs_.size()) + running_;
}

void Stream::drive() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and nothing left to do
        std::function<void()> job = std::move(jobs_.front());
        jobs_.pop_front();
        ++running_;
        lock.unlock();
        executor_.run([&] {
            job();
            // Still inside the arena, so its workers have not left it yet.
            std::lock_guard<std::mutex> relock(mutex_);
            if (executor_.threads() > 1 && jobs_.empty() && !stopping_) linger(posted_.load(std::memory_order_relaxed));
        });
        lock.lock();
        --running_;
    }
}

void Stream::linger(unsigned posted) {
    lingering_.fetch_add(1, std::memory_order_relaxed);
    ONEVIT_HB_RELEASE(&linger_token_);
    // From inside the arena: into this arena, for a worker.
    tbb::this_task_arena::enqueue([this, posted]() ONEVIT_NO_TSAN {
        ONEVIT_HB_ACQUIRE(&linger_token_);
        spin_until_posted(posted);
    });
}

void Stream::spin_until_posted(unsigned posted) {
    const auto until = std::chrono::steady_clock::now() + kLinger;
    for (unsigned i = 1; posted_.load(std::memory_order_acquire) == posted; ++i) {
        _mm_pause();
        if (i % 64 == 0 && std::chrono::steady_clock::now() >= until) break;
    }
    lingering_.fetch_sub(1, std::memory_order_release);
}

}  // namespace onevit
