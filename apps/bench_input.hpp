// What `onevit bench` feeds the model: fixed random pixels, or (--input) real
// images, decoded and preprocessed once with each image's time taken, so that
// the report gives decoding apart from the forward pass.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "latency_stats.hpp"
#include "onevit/model_info.hpp"

namespace onevit::cli {

struct BenchInput {
    std::vector<std::vector<float>> batches;  // request i runs batches[i % size]: batch × C × H × W floats
    int images = 0;                           // real images decoded (0: random input)
    std::optional<LatencyStats> decode_ms;    // decode + preprocess of one image, one thread
};

// One batch of normal random pixels, the same in every run.
BenchInput random_input(const Architecture& arch, int batch);

// images (files; expand directories first) decoded and preprocessed as info says,
// each timed; the first batch × in_flight of them (repeated if fewer) become the
// batches of the requests in flight. An image that cannot be decoded is an error.
BenchInput image_input(const ModelInfo& info, const std::vector<std::string>& images, int batch, int in_flight);

}  // namespace onevit::cli
