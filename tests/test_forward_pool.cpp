// The per-stream pool of planned Forwards (model/forward_pool.hpp): bounded
// to the most recently used batch sizes, with pinned ones kept for good; and
// Model::plan, whose planned sizes run exactly as sizes planned on first use.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <set>

#include "model/forward_pool.hpp"
#include "model/open_model_file.hpp"
#include "onevit/model.hpp"

namespace onevit {
namespace {

const std::string kModel = "weights/digits_vit.ovit";

TEST(ForwardPool, KeepsTheMostRecentBatchSizesAndThePinnedOnes) {
    const ModelFile file = open_model_file(kModel);
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    Executor executor(engine, 2);
    std::optional<VitWeights> weights;
    executor.run([&] { weights.emplace(file, executor, 2); });
    ForwardPool pool;
    const auto use = [&](int batch) {
        std::unique_ptr<Forward> forward = pool.take(batch);
        if (!forward) executor.run([&] { forward = std::make_unique<Forward>(*weights, executor, batch); });
        EXPECT_EQ(forward->batch(), batch);
        pool.give_back(std::move(forward));
    };
    pool.pin(7);
    use(7);
    for (int batch = 1; batch <= 6; ++batch) use(batch);
    EXPECT_EQ(pool.kept(), (std::set<int>{3, 4, 5, 6, 7}));  // 4 recent + the pinned one
    use(3);                                                  // 3 is the most recent now: 4 goes next
    use(9);
    EXPECT_EQ(pool.kept(), (std::set<int>{3, 5, 6, 7, 9}));
    EXPECT_EQ(pool.take(4), nullptr);
    EXPECT_NE(pool.take(7), nullptr);
}

TEST(ForwardPool, PlannedBatchSizesRunAsPlannedOnFirstUse) {
    const Model planned = Model::load(kModel, Options{2});
    const Model unplanned = Model::load(kModel, Options{2});
    planned.plan({1, 3});
    EXPECT_THROW(planned.plan({0}), Error);
    const Architecture& a = planned.info().arch;
    std::mt19937 rng(5);
    std::normal_distribution<float> dist;
    for (int batch : {3, 1, 2, 3}) {
        std::vector<float> input(std::size_t(batch) * a.channels * a.image_height * a.image_width);
        for (float& x : input) x = dist(rng);
        EXPECT_EQ(planned.run(input.data(), batch), unplanned.run(input.data(), batch)) << "batch " << batch;
    }
}

}  // namespace
}  // namespace onevit
