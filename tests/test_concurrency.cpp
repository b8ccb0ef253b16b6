// One loaded model called from several threads at once, with mixed batch
// sizes, gives exactly the logits of the same calls made one after another;
// and thread counts (which change the tiling) agree within f32 rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <future>
#include <random>
#include <thread>
#include <vector>

#include "onevit/model.hpp"

namespace onevit {
namespace {

const std::string kModel = "weights/digits_vit.ovit";

std::vector<float> random_input(const Architecture& a, int batch, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist;
    std::vector<float> v(std::size_t(batch) * a.channels * a.image_height * a.image_width);
    for (float& x : v) x = dist(rng);
    return v;
}

TEST(Concurrency, ParallelCallsMatchSequentialCalls) {
    const Model model = Model::load(kModel, Options{2});
    const Architecture& a = model.info().arch;
    constexpr int kThreads = 4, kCallsPerThread = 6;
    std::vector<std::vector<float>> inputs, sequential;
    std::vector<int> batches;
    for (int i = 0; i < kThreads * kCallsPerThread; ++i) {
        batches.push_back(1 + i % 3);
        inputs.push_back(random_input(a, batches.back(), i));
        sequential.push_back(model.run(inputs.back().data(), batches.back()));
    }
    std::vector<std::vector<float>> parallel(inputs.size());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int c = 0; c < kCallsPerThread; ++c) {
                const int i = c * kThreads + t;
                parallel[i] = model.run(inputs[i].data(), batches[i]);
            }
        });
    for (auto& thread : threads) thread.join();
    for (std::size_t i = 0; i < inputs.size(); ++i) EXPECT_EQ(parallel[i], sequential[i]) << "call " << i;
}

TEST(Concurrency, ThreadCountsAgree) {
    const Model one = Model::load(kModel, Options{1});
    const Architecture& a = one.info().arch;
    const std::vector<float> input = random_input(a, 3, 99);
    const std::vector<float> reference = one.run(input.data(), 3);
    for (int threads : {2, 3, 5}) {
        const Model model = Model::load(kModel, Options{threads});
        const std::vector<float> logits = model.run(input.data(), 3);
        ASSERT_EQ(logits.size(), reference.size());
        float max_ref = 0, max_err = 0;
        for (std::size_t i = 0; i < logits.size(); ++i) {
            max_ref = std::max(max_ref, std::abs(reference[i]));
            max_err = std::max(max_err, std::abs(logits[i] - reference[i]));
        }
        EXPECT_LE(max_err, 1e-4f * std::max(1.f, max_ref)) << threads << " threads";
    }
}

// At every precision, with every stream and thread plan: the same input gives
// bit-identical logits run after run, one at a time or several in flight
// (int8 quantizes rows at run time: its scales must not depend on the tiling's timing).
TEST(Concurrency, EveryPrecisionIsDeterministicRunToRun) {
    for (Precision precision : {Precision::f32, Precision::bf16, Precision::int8}) {
        for (auto [threads, streams] : {std::pair{1, 1}, std::pair{2, 1}, std::pair{3, 1}, std::pair{2, 2},
                                        std::pair{5, 2}, std::pair{3, 2}, std::pair{4, 2}, std::pair{3, 3}}) {
            Options options{threads, streams, Hint::throughput, precision};
            const Model model = Model::load(kModel, options);
            const std::vector<float> input = random_input(model.info().arch, 3, 7);
            const std::vector<float> first = model.run(input.data(), 3);
            std::vector<std::future<std::vector<float>>> in_flight;
            for (int i = 0; i < 4; ++i) in_flight.push_back(model.submit(input.data(), 3));
            for (auto& result : in_flight)
                EXPECT_EQ(result.get(), first)
                    << to_string(precision) << ", " << threads << " threads, " << streams << " streams";
            EXPECT_EQ(model.run(input.data(), 3), first);
        }
    }
}

TEST(Concurrency, EightRequestsThroughTwoStreamsMatchSequential) {
    const Model streams = Model::load(kModel, Options{2, 2, Hint::throughput});
    ASSERT_EQ(streams.streams(), 2);
    const Model latency = Model::load(kModel, Options{2, 0, Hint::latency});
    ASSERT_EQ(latency.streams(), 1);
    const Architecture& a = streams.info().arch;
    std::vector<std::vector<float>> inputs;
    std::vector<std::future<std::vector<float>>> submitted;
    for (int i = 0; i < 8; ++i) {
        inputs.push_back(random_input(a, 1 + i % 2, 100 + i));
        submitted.push_back(streams.submit(inputs.back().data(), 1 + i % 2));
    }
    for (int i = 0; i < 8; ++i) {
        const std::vector<float> concurrent = submitted[i].get();
        // Both streams have one thread, so they tile alike: the same bits as a sequential call.
        EXPECT_EQ(concurrent, streams.run(inputs[i].data(), 1 + i % 2)) << "request " << i;
        // The latency model tiles for two threads: the same values within f32 rounding.
        const std::vector<float> reference = latency.run(inputs[i].data(), 1 + i % 2);
        ASSERT_EQ(concurrent.size(), reference.size());
        for (std::size_t j = 0; j < reference.size(); ++j)
            EXPECT_NEAR(concurrent[j], reference[j], 1e-4f * std::max(1.f, std::abs(reference[j]))) << i << "/" << j;
    }
}

TEST(Concurrency, SubmitAndStreamPlanRejectBadArguments) {
    const Model model = Model::load(kModel);
    EXPECT_THROW(model.submit(nullptr, 1), Error);
    EXPECT_THROW(Model::load(kModel, Options{1, 2, Hint::throughput}), Error);  // more streams than threads
}

TEST(Concurrency, BadArgumentsAreErrors) {
    const Model model = Model::load(kModel);
    const std::vector<float> input = random_input(model.info().arch, 1, 1);
    EXPECT_THROW(model.run(input.data(), 0), Error);
    EXPECT_THROW(model.run(nullptr, 1), Error);
    EXPECT_THROW(Model::load(kModel, Options{-1}), Error);
}

}  // namespace
}  // namespace onevit
