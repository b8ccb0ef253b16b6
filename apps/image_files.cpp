#include "image_files.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <system_error>

#include "onevit/error.hpp"

namespace onevit::cli {

namespace fs = std::filesystem;

bool has_image_extension(const fs::path& path) {
    std::string extension = path.extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return extension == ".jpg" || extension == ".jpeg" || extension == ".png";
}

namespace {

struct Listing {
    std::vector<std::string> images;
    std::size_t skipped = 0;  // regular files of other types
};

Listing images_in(const std::string& directory) {
    Listing listing;
    std::error_code error;
    fs::recursive_directory_iterator entries(directory, fs::directory_options::skip_permission_denied, error);
    for (; !error && entries != fs::recursive_directory_iterator(); entries.increment(error)) {
        if (!entries->is_regular_file(error)) continue;
        if (has_image_extension(entries->path()))
            listing.images.push_back(entries->path().string());
        else
            ++listing.skipped;
    }
    if (error) throw Error(directory + ": cannot list the directory: " + error.message());
    std::sort(listing.images.begin(), listing.images.end());
    return listing;
}

}  // namespace

std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs) {
    std::vector<std::string> images;
    std::size_t skipped = 0;
    for (const std::string& input : inputs) {
        std::error_code error;
        if (!fs::is_directory(input, error)) {
            images.push_back(input);
            continue;
        }
        const Listing listing = images_in(input);
        if (listing.images.empty()) throw Error(input + ": directory has no .jpg, .jpeg or .png files (nor below it)");
        images.insert(images.end(), listing.images.begin(), listing.images.end());
        skipped += listing.skipped;
    }
    if (skipped)
        fmt::print(stderr, "onevit: note: skipped {} file{} in the directories given: not .jpg, .jpeg or .png\n",
                   skipped, skipped == 1 ? "" : "s");
    return images;
}

}  // namespace onevit::cli
