#include "image_batches.hpp"

#include <algorithm>

namespace onevit::cli {

void for_each_batch(const Model& model, const std::vector<std::string>& images, int batch, Progress& progress,
                    const std::function<void(std::size_t first, std::vector<DecodeAhead::Input>& inputs)>& run) {
    const std::size_t per_batch = static_cast<std::size_t>(batch);
    // Decode ahead the next batch, or as many images as the model has threads
    // (so that many cores have enough to do), whichever is more.
    DecodeAhead decoded(images, model.info(), std::max<std::size_t>(per_batch, model.threads()));
    progress.show(0);
    for (std::size_t first = 0; first < images.size(); first += per_batch) {
        const std::size_t end = std::min(first + per_batch, images.size());
        std::vector<DecodeAhead::Input> inputs;
        for (std::size_t i = first; i < end; ++i) inputs.push_back(decoded.take(i));
        run(first, inputs);
        progress.show(end);
    }
}

Stacked stack_usable(const std::vector<DecodeAhead::Input>& inputs) {
    Stacked stacked;
    for (const DecodeAhead::Input& input : inputs) {
        if (!input.error.empty()) continue;
        stacked.pixels.insert(stacked.pixels.end(), input.chw.begin(), input.chw.end());
        ++stacked.count;
    }
    return stacked;
}

}  // namespace onevit::cli
