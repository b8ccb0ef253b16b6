#include "image_inputs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "json_line.hpp"
#include "onevit/error.hpp"

namespace onevit::cli {

namespace {

namespace fs = std::filesystem;

bool has_image_extension(const fs::path& path) {
    std::string extension = path.extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return extension == ".jpg" || extension == ".jpeg" || extension == ".png";
}

}  // namespace

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
    std::vector<std::string> images;
    for (const std::string& input : inputs) {
        std::error_code error;
        if (!fs::is_directory(input, error)) {
            images.push_back(input);
            continue;
        }
        std::vector<std::string> found;
        for (const fs::directory_entry& entry : fs::directory_iterator(input))
            if (entry.is_regular_file() && has_image_extension(entry.path())) found.push_back(entry.path().string());
        if (found.empty()) throw Error(input + ": directory has no .jpg, .jpeg or .png files");
        std::sort(found.begin(), found.end());
        images.insert(images.end(), found.begin(), found.end());
    }
    return images;
}

DecodedBatch decode_batch(const std::vector<std::string>& paths, int channels) {
    DecodedBatch batch;
    batch.errors.resize(paths.size());
    for (std::size_t i = 0; i < paths.size(); ++i) {
        try {
            batch.images.push_back(decode_image(paths[i], channels));
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
