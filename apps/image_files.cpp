#include "image_files.hpp"

#include <algorithm>
#include <cctype>
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

template <class Iterator>
std::vector<std::string> images_in(Iterator entries) {
    std::vector<std::string> found;
    for (const fs::directory_entry& entry : entries)
        if (entry.is_regular_file() && has_image_extension(entry.path())) found.push_back(entry.path().string());
    std::sort(found.begin(), found.end());
    return found;
}

}  // namespace

std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs, bool recursive) {
    std::vector<std::string> images;
    for (const std::string& input : inputs) {
        std::error_code error;
        if (!fs::is_directory(input, error)) {
            images.push_back(input);
            continue;
        }
        const std::vector<std::string> found = recursive ? images_in(fs::recursive_directory_iterator(input))
                                                         : images_in(fs::directory_iterator(input));
        if (found.empty())
            throw Error(input + ": directory has no .jpg, .jpeg or .png files" + (recursive ? " (nor below it)" : ""));
        images.insert(images.end(), found.begin(), found.end());
    }
    return images;
}

}  // namespace onevit::cli
