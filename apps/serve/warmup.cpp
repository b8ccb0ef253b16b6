#include "warmup.hpp"

#include <cstddef>
#include <future>
#include <numeric>
#include <random>
#include <vector>

namespace onevit::serve {

void prepare_batch_sizes(const Model& model, int max_batch) {
    std::vector<int> sizes(max_batch);
    std::iota(sizes.begin(), sizes.end(), 1);
    model.plan(sizes);
    const Architecture& arch = model.info().arch;
    // Pixels as preprocessing gives them, not zeros: runs on zeros leave part of the
    // activation memory untouched, for the first real requests to fault in (docs/serve.md).
    std::vector<float> pixels(std::size_t(max_batch) * arch.channels * arch.image_height * arch.image_width);
    std::mt19937 random(23);
    std::normal_distribution<float> normal;
    for (float& value : pixels) value = normal(random);
    for (int batch : sizes) {
        // One run per stream at once: Model::submit sends each to a stream that has none.
        std::vector<std::future<std::vector<float>>> runs;
        for (int stream = 0; stream < model.streams(); ++stream) runs.push_back(model.submit(pixels.data(), batch));
        for (auto& run : runs) run.get();
    }
}

}  // namespace onevit::serve
