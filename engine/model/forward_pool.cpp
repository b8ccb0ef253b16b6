#include "model/forward_pool.hpp"

#include <algorithm>

namespace onevit {

std::unique_ptr<Forward> ForwardPool::take(int batch) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = idle_.find(batch);
    if (it == idle_.end()) return nullptr;
    std::unique_ptr<Forward> forward = std::move(it->second);
    idle_.erase(it);
    return forward;
}

void ForwardPool::give_back(std::unique_ptr<Forward> forward) {
    const int batch = forward->batch();
    std::unique_ptr<Forward> evicted;  // destroyed outside the lock
    std::lock_guard<std::mutex> lock(mutex_);
    idle_[batch] = std::move(forward);
    if (pinned_.count(batch)) return;
    recent_.remove(batch);
    recent_.push_front(batch);
    if (recent_.size() <= kRecentBatchSizes) return;
    evicted = std::move(idle_[recent_.back()]);
    idle_.erase(recent_.back());
    recent_.pop_back();
}

void ForwardPool::pin(int batch) {
    std::lock_guard<std::mutex> lock(mutex_);
    pinned_.insert(batch);
    recent_.remove(batch);
}

std::set<int> ForwardPool::kept() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::set<int> batches;
    for (const auto& entry : idle_) batches.insert(entry.first);
    return batches;
}

}  // namespace onevit
