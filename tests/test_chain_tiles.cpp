// Chain tiles (ops/schedule.hpp): a large batch splits each thread's rows into
// tiles that fit the core's L2. The ops between two attentions must still take
// the same tiles (one chain, one phase), and every image must come out as it
// does alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "model/emulate.hpp"
#include "onevit/model.hpp"
#include "ops/schedule.hpp"

namespace onevit {
namespace {

const std::string kModel = "weights/digits_vit.ovit";  // 17 tokens an image

TEST(PlanChainTiles, OneTilePerThreadUntilTheRowsOutgrowL2ThenEvenlyMore) {
    for (int threads : {1, 2, 3, 16})
        for (int rows : {1, 2, 17, 197, 1576, 8200, 100000}) {
            const std::vector<Range> tiles = chain_tiles(rows, threads);
            const int per_thread = std::min(rows, threads);
            ASSERT_EQ(tiles.size() % per_thread, 0u) << rows << " rows, " << threads << " threads";
            int next = 0, smallest = rows, largest = 0;
            for (const Range& r : tiles) {
                EXPECT_EQ(r.begin, next);
                next += r.size;
                smallest = std::min(smallest, r.size), largest = std::max(largest, r.size);
            }
            EXPECT_EQ(next, rows);
            EXPECT_LE(largest - smallest, 1);
            if (rows <= 64 * per_thread) {  // never under 64 rows
                EXPECT_EQ(static_cast<int>(tiles.size()), per_thread);
            }
            if (rows == 100000) {  // no L2 holds these
                EXPECT_GT(static_cast<int>(tiles.size()), per_thread);
            }
        }
}

TEST(PlanChainTiles, ABatchOfManyTilesRunsTheSameChainsAndEveryImageAsAlone) {
    const int batch = 1000;  // 17,000 rows: several tiles per thread on any L2 up to 8 MiB
    for (int threads : {1, 2}) {
        const EmulatedForward one = emulate_forward(kModel, 1, threads, 1);
        const EmulatedForward many = emulate_forward(kModel, batch, threads, 1);
        ASSERT_EQ(one.phases.size(), many.phases.size()) << threads << " threads: a chain came apart";
        int split = 0;
        for (std::size_t p = 0; p < one.phases.size(); ++p) {
            EXPECT_EQ(one.phases[p].ops, many.phases[p].ops);
            split += many.phases[p].tiles > threads * one.phases[p].tiles;
        }
        EXPECT_GT(split, 0) << threads << " threads: no phase took more tiles";
    }
    const Model model = Model::load(kModel, Options{2});
    const Architecture& a = model.info().arch;
    const std::size_t image = std::size_t(a.channels) * a.image_height * a.image_width;
    std::vector<float> input(batch * image);
    std::mt19937 rng(3);
    std::normal_distribution<float> dist;
    for (float& x : input) x = dist(rng);
    const std::vector<float> all = model.run(input.data(), batch);
    const std::size_t classes = all.size() / batch;
    for (int b : {0, 1, batch / 2, batch - 1}) {
        const std::vector<float> alone = model.run(input.data() + b * image, 1);
        float scale = 0, diff = 0;
        for (std::size_t c = 0; c < classes; ++c)
            scale = std::max(scale, std::abs(alone[c])),
            diff = std::max(diff, std::abs(alone[c] - all[b * classes + c]));
        EXPECT_LE(diff, 1e-5f * scale) << "image " << b;
    }
}

}  // namespace
}  // namespace onevit
