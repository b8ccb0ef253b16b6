// One decoder per image format, each giving 8-bit grey (channels 1) or RGB
// (channels 3) pixels as PIL's Image.open(...).convert('RGB') sees them: alpha
// dropped, palettes looked up. image_decode.cpp picks the decoder by the
// file's magic bytes and converts to the channels asked for. `name` (a path,
// or "image data") starts every error message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "image/resize.hpp"
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

// A decoded part of an image file: `image` is the rectangle at (where.left,
// where.top) of the where.full_width × where.full_height image.
struct ImagePart {
    Image image;
    SourcePart where;
};

// Given an image's width and height, the rectangle of it that is needed.
using WantedRect = std::function<ResizeRegion(int width, int height)>;

// decode_image_bytes of the part of the image that `wanted` asks for once the
// size is known: a JPEG decodes whole blocks around that rectangle, with a
// block more each side (libjpeg's upsampling treats a cropped row's ends as
// the image's edges), other formats the whole image. Its pixels are those of
// the whole image's decoding.
ImagePart decode_image_part(const std::uint8_t* data, std::size_t size, int channels, const DecodeLimits& limits,
                            const std::string& name, const WantedRect& wanted);

Image decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits);
// The JPEG decoder's part of decode_image_part (the whole image where `wanted` is null).
ImagePart decode_jpeg_part(const std::uint8_t* data, std::size_t size, const std::string& name,
                           const DecodeLimits& limits, const WantedRect* wanted);
Image decode_png(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits);
Image decode_webp(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits);
Image decode_bmp(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits);
Image decode_tiff(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits);

}  // namespace onevit
