// The Forwards a stream keeps between runs, by batch size: those planned ahead
// (Model::plan) for the model's lifetime, the others while they are among the
// most recently used — so a server seeing every batch size from 1 to 64 keeps a
// few sets of activation buffers, not 64. A stream runs one request at a time:
// it needs at most one Forward per batch size.
#pragma once

#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "model/vit.hpp"

namespace onevit {

class ForwardPool {
public:
    static constexpr std::size_t kRecentBatchSizes = 4;

    // The kept Forward for this batch size, or null (the caller plans one).
    std::unique_ptr<Forward> take(int batch);
    // After a run: kept, and the least recently used batch size beyond
    // kRecentBatchSizes (not a pinned one) let go.
    void give_back(std::unique_ptr<Forward> forward);
    // Keeps this batch size's Forward for good.
    void pin(int batch);
    // The batch sizes whose Forwards are kept now.
    std::set<int> kept() const;

private:
    mutable std::mutex mutex_;
    std::map<int, std::unique_ptr<Forward>> idle_;
    std::list<int> recent_;  // batch sizes not pinned, most recently used first
    std::set<int> pinned_;
};

}  // namespace onevit
