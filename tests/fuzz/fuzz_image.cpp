// libFuzzer target: arbitrary bytes as an image file, through decoding
// (libjpeg-turbo / libpng, with a small pixel budget) and preprocessing.
//
// The last byte picks the channel count, the resize mode and the
// interpolation, so every input exercises one fixed recipe and the seeds
// (real JPEG and PNG files) spread over all of them.
//
// Properties checked: no crash, no sanitizer report, no hang; every failure is
// an onevit::Error with a non-empty message; a decoded image is consistent
// (size, channels, pixel count) and within the budget; preprocessing gives a
// finite C × H × W tensor; preprocess_image_bytes (which decodes a JPEG in
// part) gives the same tensor, or refuses the same file with the same message.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "onevit/error.hpp"
#include "onevit/image.hpp"
#include "onevit/model_info.hpp"

namespace {

constexpr std::int64_t kMaxPixels = 1 << 18;  // 512 × 512

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "fuzz_image: %s\n", what);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::uint8_t knobs = size ? data[size - 1] : 0;
    const int channels = (knobs & 1) ? 1 : 3;
    onevit::Architecture arch;
    arch.channels = channels;
    arch.image_height = 24;
    arch.image_width = 20;
    onevit::Preprocessing recipe;
    recipe.resize = (knobs & 2) ? onevit::Resize::direct : onevit::Resize::shorter_then_crop;
    recipe.resize_size = 22 + (knobs >> 5);  // 22..29: crops and pads
    recipe.interpolation = static_cast<onevit::Interpolation>((knobs >> 2) % 3);
    recipe.mean.assign(channels, 0.5f);
    recipe.std.assign(channels, 0.25f);

    onevit::DecodeLimits limits;
    limits.max_pixels = kMaxPixels;
    std::vector<float> x;
    std::string refused;
    try {
        const onevit::Image image = onevit::decode_image_bytes(data, size, channels, limits);
        if (image.channels != channels || image.width <= 0 || image.height <= 0 ||
            static_cast<std::int64_t>(image.width) * image.height > kMaxPixels ||
            image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * channels)
            die("inconsistent decoded image");
        x = onevit::preprocess(image, arch, recipe);
        if (x.size() != static_cast<std::size_t>(channels) * arch.image_height * arch.image_width)
            die("wrong preprocessed size");
        for (float v : x)
            if (!std::isfinite(v)) die("non-finite preprocessed value");
    } catch (const onevit::Error& e) {
        if (e.what() == nullptr || e.what()[0] == '\0') die("onevit::Error with an empty message");
        if (std::getenv("ONEVIT_FUZZ_VERBOSE")) std::fprintf(stderr, "fuzz_image: refused: %s\n", e.what());
        refused = e.what();
    }
    try {
        const std::vector<float> in_part = onevit::preprocess_image_bytes(data, size, arch, recipe, limits);
        if (!refused.empty()) die("preprocess_image_bytes takes a file decode + preprocess refuses");
        if (in_part.size() != x.size() || std::memcmp(in_part.data(), x.data(), x.size() * sizeof(float)) != 0)
            die("preprocess_image_bytes differs from decode + preprocess");
    } catch (const onevit::Error& e) {
        if (refused != e.what()) die("preprocess_image_bytes refuses otherwise than decode + preprocess");
    }
    return 0;
}
