// Memory for the weights reordered at load. Every forward streams all of them
// from DRAM, so they live on transparent huge pages (2 MB) where the kernel
// allows it: far fewer TLB misses per forward and page faults at load
// (docs/performance.md, "Loading"). Allocations are carved out of large chunks
// so that rounding to 2 MB costs little resident memory.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace onevit {

class WeightMemory {
public:
    WeightMemory() = default;
    WeightMemory(const WeightMemory&) = delete;
    WeightMemory& operator=(const WeightMemory&) = delete;

    // 64-byte aligned, uninitialised, valid as long as this object. Thread-safe.
    void* allocate(std::size_t bytes);

private:
    struct Free {
        void operator()(void* p) const;
    };
    struct Chunk {
        std::unique_ptr<void, Free> base;
        std::size_t size = 0;
        std::size_t used = 0;
    };
    std::mutex mutex_;
    std::vector<Chunk> chunks_;
};

}  // namespace onevit
