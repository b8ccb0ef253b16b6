#include "latest_request_worker.hpp"

#include <utility>

namespace onevit::desktop {

LatestRequestWorker::LatestRequestWorker(std::function<void(const std::string&)> job)
    : job_(std::move(job)), thread_([this] { loop(); }) {}

LatestRequestWorker::~LatestRequestWorker() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void LatestRequestWorker::request(std::string argument) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        waiting_ = std::move(argument);
    }
    wake_.notify_one();
}

void LatestRequestWorker::loop() {
    for (;;) {
        std::string argument;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || waiting_; });
            if (stopping_) return;
            argument = std::move(*waiting_);
            waiting_.reset();
        }
        job_(argument);
    }
}

}  // namespace onevit::desktop
