#include "runtime/weight_memory.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace onevit {

namespace {

constexpr std::size_t kHugePage = std::size_t(2) << 20;
constexpr std::size_t kChunk = std::size_t(32) << 20;
constexpr std::size_t kAlignment = 64;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

}  // namespace

void WeightMemory::Free::operator()(void* p) const { std::free(p); }

void* WeightMemory::allocate(std::size_t bytes) {
    bytes = round_up(std::max<std::size_t>(bytes, 1), kAlignment);
    std::lock_guard<std::mutex> lock(mutex_);
    for (Chunk& chunk : chunks_) {
        if (chunk.size - chunk.used >= bytes) {
            void* p = static_cast<char*>(chunk.base.get()) + chunk.used;
            chunk.used += bytes;
            return p;
        }
    }
    Chunk chunk;
    chunk.size = round_up(std::max(bytes, kChunk), kHugePage);
    chunk.base.reset(std::aligned_alloc(kHugePage, chunk.size));
    if (!chunk.base) throw std::bad_alloc();
    // Advice only: without huge pages the weights simply sit on small ones.
    ::madvise(chunk.base.get(), chunk.size, MADV_HUGEPAGE);
    chunk.used = bytes;
    chunks_.push_back(std::move(chunk));
    return chunks_.back().base.get();
}

}  // namespace onevit
