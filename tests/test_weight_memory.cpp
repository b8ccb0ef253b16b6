// WeightMemory: aligned, disjoint allocations, from several threads at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "runtime/weight_memory.hpp"

namespace onevit {
namespace {

struct Allocation {
    unsigned char* data;
    std::size_t bytes;
    unsigned char fill;
};

TEST(WeightMemory, AllocationsAreAlignedDisjointAndKeepTheirContents) {
    WeightMemory memory;
    // Sizes around the 32 MB chunk and odd ones, from four threads at once.
    const std::vector<std::size_t> sizes = {
        1, 63, 64, 1000, std::size_t(9) << 20, (std::size_t(32) << 20) + 5, std::size_t(20) << 20, 4096, 12345};
    const int threads = 4;
    std::vector<std::vector<Allocation>> made(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
        workers.emplace_back([&, t] {
            for (std::size_t i = 0; i < sizes.size(); ++i) {
                auto* p = static_cast<unsigned char*>(memory.allocate(sizes[i]));
                const auto fill = static_cast<unsigned char>(t * sizes.size() + i + 1);
                std::memset(p, fill, sizes[i]);
                made[t].push_back({p, sizes[i], fill});
            }
        });
    for (std::thread& w : workers) w.join();

    std::vector<Allocation> all;
    for (const auto& per_thread : made) all.insert(all.end(), per_thread.begin(), per_thread.end());
    for (const Allocation& a : all) {
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data) % 64, 0u);
        EXPECT_TRUE(std::all_of(a.data, a.data + a.bytes, [&](unsigned char c) { return c == a.fill; }))
            << "an allocation of " << a.bytes << " bytes was overwritten";
    }
    std::sort(all.begin(), all.end(), [](const Allocation& a, const Allocation& b) { return a.data < b.data; });
    for (std::size_t i = 1; i < all.size(); ++i)
        EXPECT_LE(all[i - 1].data + all[i - 1].bytes, all[i].data) << "allocations overlap";
}

}  // namespace
}  // namespace onevit
