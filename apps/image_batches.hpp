// Images through a model a batch at a time, for `classify` and `eval`: decoded
// and preprocessed ahead on oneTBB's workers (decode_ahead.hpp) while the model
// runs the batch before, with the progress line on a terminal.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "decode_ahead.hpp"
#include "onevit/model.hpp"
#include "progress.hpp"

namespace onevit::cli {

// Calls run(first, inputs) for images [first, first + inputs.size()), batch
// images at a time, in order; `inputs` holds each image's pixels or its error,
// and run may set an error on an input it cannot use. progress is shown after
// each batch.
void for_each_batch(const Model& model, const std::vector<std::string>& images, int batch, Progress& progress,
                    const std::function<void(std::size_t first, std::vector<DecodeAhead::Input>& inputs)>& run);

// The inputs without an error, one after another (count × C × H × W floats).
struct Stacked {
    std::vector<float> pixels;
    int count = 0;
};
Stacked stack_usable(const std::vector<DecodeAhead::Input>& inputs);

}  // namespace onevit::cli
