#include "image_files.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "onevit/error.hpp"

namespace onevit::cli {

namespace fs = std::filesystem;

std::string image_extensions_text() {
    const std::vector<std::string>& extensions = image_file_extensions();
    std::string text;
    for (std::size_t i = 0; i < extensions.size(); ++i)
        text += (i == 0 ? "" : i + 1 == extensions.size() ? " or " : ", ") + extensions[i];
    return text;
}

namespace {

std::vector<std::uint8_t> read_stdin() {
    if (::isatty(STDIN_FILENO)) throw Error("stdin: is a terminal, not an image (pipe one in: - < photo.jpg)");
    std::vector<std::uint8_t> bytes;
    std::uint8_t chunk[1 << 16];
    std::size_t n;
    while ((n = std::fread(chunk, 1, sizeof chunk, stdin)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
    if (std::ferror(stdin)) throw Error("stdin: read failed");
    return bytes;
}

// Read once: "-" may be decoded again (a grey model's explanation is drawn in
// colour; "-" given twice). A static's initialisation runs once, even on threads.
const std::vector<std::uint8_t>& stdin_bytes() {
    static const std::vector<std::uint8_t> bytes = read_stdin();
    return bytes;
}

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

Image decode_input(const std::string& path, int channels) {
    if (path != "-") return decode_image(path, channels);
    const std::vector<std::uint8_t>& bytes = stdin_bytes();
    return decode_image_bytes(bytes.data(), bytes.size(), channels, {}, "stdin");
}

std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs) {
    std::vector<std::string> images;
    std::size_t skipped = 0;
    for (const std::string& input : inputs) {
        std::error_code error;
        if (input == "-" || !fs::is_directory(input, error)) {
            images.push_back(input);
            continue;
        }
        const Listing listing = images_in(input);
        if (listing.images.empty())
            throw Error(input + ": directory has no image files (" + image_extensions_text() + "; nor below it)");
        images.insert(images.end(), listing.images.begin(), listing.images.end());
        skipped += listing.skipped;
    }
    if (skipped)
        fmt::print(stderr, "onevit: note: skipped {} file{} in the directories given: not {}\n", skipped,
                   skipped == 1 ? "" : "s", image_extensions_text());
    return images;
}

}  // namespace onevit::cli
