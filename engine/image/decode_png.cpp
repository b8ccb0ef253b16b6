// PNG (libpng) to 8-bit grey or RGB, the pixels PIL gives.
//
// libpng reports errors by longjmp: it is driven from one function whose only
// automatic objects are trivially destructible, with all C++ state held by the
// caller, so a longjmp never skips a destructor.

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <png.h>

#include "image/decoders.hpp"
#include "onevit/error.hpp"

namespace onevit {
namespace {

struct PngDecoder {
    png_structp png = nullptr;
    png_infop info = nullptr;
    const std::uint8_t* data = nullptr;
    std::size_t size = 0;
    std::size_t pos = 0;
    char message[256] = {};
    std::vector<png_bytep> rows;
    Image image;

    PngDecoder() = default;
    ~PngDecoder() { png_destroy_read_struct(&png, &info, nullptr); }  // accepts nulls
    PngDecoder(const PngDecoder&) = delete;
    PngDecoder& operator=(const PngDecoder&) = delete;
};

[[noreturn]] void png_fail(png_structp png, png_const_charp message) {
    auto* d = static_cast<PngDecoder*>(png_get_error_ptr(png));
    std::snprintf(d->message, sizeof d->message, "%s", message);
    png_longjmp(png, 1);
}

// libpng warns about things PIL ignores too (bad sRGB profiles, ancillary
// chunk CRCs); damaged image data is an error, not a warning.
void png_ignore_warning(png_structp, png_const_charp) {}

void png_read_bytes(png_structp png, png_bytep out, png_size_t count) {
    auto* d = static_cast<PngDecoder*>(png_get_io_ptr(png));
    if (count > d->size - d->pos) png_error(png, "file is truncated");
    std::memcpy(out, d->data + d->pos, count);
    d->pos += count;
}

bool run_png(PngDecoder& d) {
    if (setjmp(png_jmpbuf(d.png))) return false;
    png_set_read_fn(d.png, &d, png_read_bytes);
    png_read_info(d.png, d.info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(d.png, d.info, &width, &height, &bit_depth, &color_type, nullptr, nullptr, nullptr);

    // To 8-bit grey or RGB, alpha dropped as PIL's convert('RGB') drops it.
    // 16-bit samples keep their high byte, as PIL's ";16B" unpackers do.
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(d.png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(d.png);
    if (bit_depth == 16) png_set_strip_16(d.png);
    png_set_strip_alpha(d.png);
    png_set_interlace_handling(d.png);
    png_read_update_info(d.png, d.info);

    Image& image = d.image;
    image.width = static_cast<int>(width);
    image.height = static_cast<int>(height);
    image.channels = png_get_channels(d.png, d.info);
    const std::size_t stride = static_cast<std::size_t>(image.width) * image.channels;
    if ((image.channels != 1 && image.channels != 3) || png_get_rowbytes(d.png, d.info) != stride)
        png_error(d.png, "unexpected pixel layout after conversion to 8-bit");
    image.pixels.resize(stride * image.height);
    d.rows.resize(image.height);
    for (int y = 0; y < image.height; ++y) d.rows[y] = image.pixels.data() + stride * y;
    png_read_image(d.png, d.rows.data());
    return true;
}

std::uint32_t big_endian_u32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

}  // namespace

Image decode_png(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits) {
    // png_read_info reads every chunk up to the image data, so the size is
    // checked here, from IHDR, which the PNG specification places first.
    if (size < 24 || std::memcmp(data + 12, "IHDR", 4) != 0)
        throw Error(name + ": bad PNG: no IHDR chunk at the start");
    check_size(name, big_endian_u32(data + 16), big_endian_u32(data + 20), limits);

    PngDecoder d;
    d.data = data;
    d.size = size;
    d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, png_fail, png_ignore_warning);
    if (d.png) d.info = png_create_info_struct(d.png);
    if (!d.png || !d.info) throw Error(name + ": out of memory starting the PNG decoder");
    if (!run_png(d)) throw Error(name + ": bad PNG: " + d.message);
    return std::move(d.image);
}

}  // namespace onevit
