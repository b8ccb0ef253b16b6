#include "runtime/stream.hpp"

namespace onevit {

Stream::Stream(const dnnl::engine& engine, int threads) : executor_(engine, threads), driver_([this] { drive(); }) {}

Stream::~Stream() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    driver_.join();
}

void Stream::post(std::function<void()> job) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
}

bool Stream::run_here_if_idle(const std::function<void()>& job) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (running_ > 0 || !jobs_.empty() || stopping_) return false;
        ++running_;  // the driver leaves posted jobs queued until this one ends
    }
    const auto done = [this] {
        bool queued;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            --running_;
            queued = !jobs_.empty();
        }
        if (queued) wake_.notify_one();
    };
    try {
        executor_.run(job);
    } catch (...) {
        done();
        throw;
    }
    done();
    return true;
}

int Stream::load() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(jobs_.size()) + running_;
}

void Stream::drive() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return running_ == 0 && (stopping_ || !jobs_.empty()); });
        if (jobs_.empty()) return;  // stopping, and nothing left to do
        std::function<void()> job = std::move(jobs_.front());
        jobs_.pop_front();
        ++running_;
        lock.unlock();
        executor_.run(job);
        lock.lock();
        --running_;
    }
}

}  // namespace onevit
