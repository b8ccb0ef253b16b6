// One decoder per image format, each giving 8-bit grey (channels 1) or RGB
// (channels 3) pixels as PIL's Image.open(...).convert('RGB') sees them: alpha
// dropped, palettes looked up. image_decode.cpp picks the decoder by the
// file's magic bytes and converts to the channels asked for. `name` (a path,
// or "image data") starts every error message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "onevit/image.hpp"

namespace onevit {

// Throws onevit::Error naming the image when a side is zero or negative or
// width × height is over limits.max_pixels. Every decoder calls it before it
// allocates the pixels.
void check_size(const std::string& name, std::int64_t width, std::int64_t height, const DecodeLimits& limits);

// PIL's Convert.c cmyk2rgb for one channel: not_black = 255 - K, ink the C, M or Y value.
inline std::uint8_t cmyk_channel(int ink, int not_black) {
    const int t = ink * not_black + 128;  // MULDIV255
    return static_cast<std::uint8_t>(not_black - (((t >> 8) + t) >> 8));
}

Image decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits);
Image decode_png(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits);
Image decode_webp(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits);
Image decode_bmp(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits);
Image decode_tiff(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits);

}  // namespace onevit
