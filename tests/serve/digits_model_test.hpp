// test_serve's suites on the bundled digits model (1 x 32 x 32, 10 classes):
// the model, loaded once per suite on 2 threads in `Streams` streams, and
// random inputs for it.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "onevit/model.hpp"

namespace onevit::serve {

template <int Streams>
class DigitsModelTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        Options options;
        options.threads = 2;
        options.streams = Streams;
        model_ = new Model(Model::load("weights/digits_vit.ovit", options));
    }
    static void TearDownTestSuite() { delete model_; }

    static std::vector<float> random_images(int images, unsigned seed) {
        std::mt19937 generator(seed);
        std::normal_distribution<float> normal;
        std::vector<float> pixels(std::size_t(images) * 32 * 32);
        for (float& v : pixels) v = normal(generator);
        return pixels;
    }

    static inline Model* model_ = nullptr;
};

}  // namespace onevit::serve
