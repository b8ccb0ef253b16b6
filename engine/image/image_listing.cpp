#include "image/image_listing.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "onevit/error.hpp"
#include "onevit/image.hpp"

namespace onevit {

namespace fs = std::filesystem;

namespace {

ImageListing images_in(const std::string& directory) {
    ImageListing listing;
    std::error_code error;
    fs::recursive_directory_iterator entries(directory, fs::directory_options::skip_permission_denied, error);
    for (; !error && entries != fs::recursive_directory_iterator(); entries.increment(error)) {
        if (!entries->is_regular_file(error)) continue;
        if (has_image_extension(entries->path().string()))
            listing.images.push_back(entries->path().string());
        else
            ++listing.skipped;
    }
    if (error) throw Error(directory + ": cannot list the directory: " + error.message());
    std::sort(listing.images.begin(), listing.images.end());
    return listing;
}

}  // namespace

ImageListing list_image_inputs(const std::vector<std::string>& inputs) {
    ImageListing all;
    for (const std::string& input : inputs) {
        std::error_code error;
        if (input == "-" || !fs::is_directory(input, error)) {
            all.images.push_back(input);
            continue;
        }
        const ImageListing listing = images_in(input);
        if (listing.images.empty())
            throw Error(input + ": directory has no image files (" + image_extensions_text() + "; nor below it)");
        all.images.insert(all.images.end(), listing.images.begin(), listing.images.end());
        all.skipped += listing.skipped;
    }
    return all;
}

std::string image_extensions_text() {
    const std::vector<std::string>& extensions = image_file_extensions();
    std::string text;
    for (std::size_t i = 0; i < extensions.size(); ++i)
        text += (i == 0 ? "" : i + 1 == extensions.size() ? " or " : ", ") + extensions[i];
    return text;
}

std::string skipped_files_note(std::size_t skipped) {
    return "skipped " + std::to_string(skipped) + " file" + (skipped == 1 ? "" : "s") +
           " in the directories given: not " + image_extensions_text();
}

}  // namespace onevit
