#include "warmup.hpp"

#include <future>
#include <vector>

namespace onevit::serve {

void prepare_batch_sizes(const Model& model, int max_batch) {
    const Architecture& arch = model.info().arch;
    const std::vector<float> zeros(std::size_t(max_batch) * arch.channels * arch.image_height * arch.image_width, 0.f);
    for (int batch = 1; batch <= max_batch; ++batch) {
        // One run per stream at once: Model::submit sends each to a different
        // (the least busy) stream.
        std::vector<std::future<std::vector<float>>> runs;
        for (int s = 0; s < model.streams(); ++s) runs.push_back(model.submit(zeros.data(), batch));
        for (auto& run : runs) run.get();
    }
}

}  // namespace onevit::serve
