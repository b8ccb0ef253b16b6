#include "image_files.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <utility>

#include "image/image_listing.hpp"
#include "onevit/error.hpp"

namespace onevit::cli {

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

}  // namespace

Image decode_input(const std::string& path, int channels) {
    if (path != "-") return decode_image(path, channels);
    const std::vector<std::uint8_t>& bytes = stdin_bytes();
    return decode_image_bytes(bytes.data(), bytes.size(), channels, {}, "stdin");
}

std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs) {
    ImageListing listing = list_image_inputs(inputs);
    if (listing.skipped) fmt::print(stderr, "onevit: note: {}\n", skipped_files_note(listing.skipped));
    return std::move(listing.images);
}

}  // namespace onevit::cli
