#include "image_inputs.hpp"

#include <fmt/format.h>

#include <cstdio>

#include "image_files.hpp"
#include "json_line.hpp"
#include "onevit/error.hpp"

namespace onevit::cli {

DecodedBatch decode_batch(const std::vector<std::string>& paths, int channels) {
    DecodedBatch batch;
    batch.errors.resize(paths.size());
    for (std::size_t i = 0; i < paths.size(); ++i) {
        try {
            batch.images.push_back(decode_input(paths[i], channels));
        } catch (const Error& e) {
            batch.errors[i] = e.what();
        }
    }
    return batch;
}

void print_image_failure(const std::string& image, const std::string& message, bool json) {
    std::fflush(stdout);  // keep stdout and stderr in order on a terminal
    fmt::print(stderr, "onevit: error: {}\n", message);
    if (json) fmt::print("{}\n", json_line({{"image", image}, {"error", message}}));
}

}  // namespace onevit::cli
