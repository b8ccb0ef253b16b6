#include "bench_input.hpp"

#include <chrono>
#include <cstddef>
#include <random>

#include "image_files.hpp"
#include "onevit/image.hpp"

namespace onevit::cli {

BenchInput random_input(const Architecture& arch, int batch) {
    std::mt19937 generator(20240601);  // fixed: every run times the same input
    std::normal_distribution<float> normalised_pixel(0.f, 1.f);
    std::vector<float> input(static_cast<std::size_t>(batch) * arch.channels * arch.image_height * arch.image_width);
    for (float& value : input) value = normalised_pixel(generator);
    return {{std::move(input)}, 0, std::nullopt};
}

BenchInput image_input(const ModelInfo& info, const std::vector<std::string>& images, int batch, int in_flight) {
    using Clock = std::chrono::steady_clock;
    const std::size_t kept = static_cast<std::size_t>(batch) * static_cast<std::size_t>(in_flight);
    std::vector<std::vector<float>> pixels;  // of the first `kept` images
    std::vector<double> milliseconds;
    for (const std::string& path : images) {
        const Clock::time_point start = Clock::now();
        std::vector<float> chw = preprocess(decode_input(path, info.arch.channels), info.arch, info.preprocess);
        milliseconds.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        if (pixels.size() < kept) pixels.push_back(std::move(chw));
    }
    BenchInput input{{}, static_cast<int>(images.size()), latency_stats(milliseconds)};
    for (std::size_t request = 0, image = 0; request < static_cast<std::size_t>(in_flight); ++request) {
        std::vector<float> stacked;
        for (int b = 0; b < batch; ++b, ++image)
            stacked.insert(stacked.end(), pixels[image % pixels.size()].begin(), pixels[image % pixels.size()].end());
        input.batches.push_back(std::move(stacked));
    }
    return input;
}

}  // namespace onevit::cli
