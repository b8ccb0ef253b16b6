// TIFF (libtiff) to 8-bit grey or RGB, the pixels PIL 9.4's TiffImagePlugin
// gives for the layouts it knows: grey and palette of 1, 2, 4 or 8 bits
// (min-is-white inverted), RGB of 8 or 16 bits (16: the high byte, as PIL's
// "RGB;16" unpackers), with or without alpha (associated alpha divided out,
// as PIL's "RGBa"), CMYK of 8 bits (PIL's cmyk2rgb), and JPEG-compressed
// YCbCr (converted by libjpeg, as PIL asks libtiff to). The first image of a
// multi-page file; orientation tags are ignored, as Image.open ignores them.
// Other layouts (float, 16-bit grey, planar, bit-reversed) are refused by name.

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <tiffio.h>

#include "image/decoders.hpp"
#include "onevit/error.hpp"

namespace onevit {
namespace {

// The file in memory, as libtiff's client I/O reads it, and the first error libtiff reported.
struct TiffSource {
    const std::uint8_t* data;
    toff_t size;
    toff_t position = 0;
    char message[256] = {};
};

tmsize_t tiff_read(thandle_t handle, void* buffer, tmsize_t count) {
    auto* s = static_cast<TiffSource*>(handle);
    const toff_t n = std::min<toff_t>(toff_t(count), s->position < s->size ? s->size - s->position : 0);
    std::memcpy(buffer, s->data + s->position, n);
    s->position += n;
    return tmsize_t(n);
}
tmsize_t tiff_write(thandle_t, void*, tmsize_t) { return -1; }
toff_t tiff_seek(thandle_t handle, toff_t offset, int whence) {
    auto* s = static_cast<TiffSource*>(handle);
    const toff_t base = whence == SEEK_CUR ? s->position : whence == SEEK_END ? s->size : 0;
    return s->position = base + offset;  // past the end reads nothing
}
int tiff_close(thandle_t) { return 0; }
toff_t tiff_size(thandle_t handle) { return static_cast<TiffSource*>(handle)->size; }
int tiff_map(thandle_t handle, void** base, toff_t* size) {
    auto* s = static_cast<TiffSource*>(handle);
    *base = const_cast<std::uint8_t*>(s->data);  // libtiff only reads a mapping opened "r"
    *size = s->size;
    return 1;
}
void tiff_unmap(thandle_t, void*, toff_t) {}

int tiff_error(TIFF*, void* user_data, const char*, const char* format, va_list arguments) {
    auto* s = static_cast<TiffSource*>(user_data);
    if (!s->message[0]) std::vsnprintf(s->message, sizeof s->message, format, arguments);
    return 1;  // handled: nothing is printed
}
int tiff_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

enum class Kind { grey, palette, rgb, cmyk };

struct Layout {
    Kind kind = Kind::grey;
    int bits = 8;
    int samples = 1;            // per pixel, in the decoded rows
    bool min_is_white = false;  // grey: 0 is white
    bool associated_alpha = false;
    std::vector<std::uint8_t> palette;  // palette: 256 RGB entries
};

std::uint16_t field16(TIFF* tif, ttag_t tag) {
    std::uint16_t value = 0;
    TIFFGetFieldDefaulted(tif, tag, &value);
    return value;
}

Layout read_layout(TIFF* tif, const std::string& name) {
    const auto refuse = [&](const std::string& what) { throw Error(name + ": unsupported TIFF: " + what); };
    Layout l;
    l.bits = field16(tif, TIFFTAG_BITSPERSAMPLE);
    l.samples = field16(tif, TIFFTAG_SAMPLESPERPIXEL);
    std::uint16_t photometric = 0;
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric)) refuse("no photometric interpretation");
    if (field16(tif, TIFFTAG_SAMPLEFORMAT) != SAMPLEFORMAT_UINT) refuse("samples are not unsigned integers");
    if (field16(tif, TIFFTAG_PLANARCONFIG) != PLANARCONFIG_CONTIG) refuse("planar (separate) samples");
    if (field16(tif, TIFFTAG_FILLORDER) != FILLORDER_MSB2LSB) refuse("bit-reversed fill order");
    std::uint16_t extra_count = 0;
    std::uint16_t* extra = nullptr;
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &extra_count, &extra);
    l.associated_alpha = extra_count > 0 && extra[0] == EXTRASAMPLE_ASSOCALPHA;

    const bool small = l.bits == 1 || l.bits == 2 || l.bits == 4 || l.bits == 8;
    switch (photometric) {
        case PHOTOMETRIC_MINISWHITE:
        case PHOTOMETRIC_MINISBLACK:
            if (!small) refuse(std::to_string(l.bits) + "-bit grey");
            if (l.bits < 8 && l.samples != 1) refuse("grey of several samples under 8 bits");
            l.kind = Kind::grey;
            l.min_is_white = photometric == PHOTOMETRIC_MINISWHITE;
            break;
        case PHOTOMETRIC_PALETTE: {
            if (!small) refuse(std::to_string(l.bits) + "-bit palette");
            if (l.bits < 8 && l.samples != 1) refuse("palette of several samples under 8 bits");
            std::uint16_t *r = nullptr, *g = nullptr, *b = nullptr;
            if (!TIFFGetField(tif, TIFFTAG_COLORMAP, &r, &g, &b)) refuse("palette without a colour map");
            l.kind = Kind::palette;
            l.palette.resize(256 * 3);
            for (int i = 0; i < 256; ++i)  // the colour map has 2^bits entries; PIL's default ramp past them
                for (int c = 0; c < 3; ++c)
                    l.palette[3 * i + c] = i < (1 << l.bits) ? std::uint8_t((c == 0   ? r
                                                                             : c == 1 ? g
                                                                                      : b)[i] >>
                                                                            8)
                                                             : std::uint8_t(i);
            break;
        }
        case PHOTOMETRIC_RGB:
            if ((l.bits != 8 && l.bits != 16) || l.samples < 3) refuse(std::to_string(l.bits) + "-bit RGB");
            if (l.bits == 16 && l.associated_alpha) refuse("16-bit RGB with associated alpha");
            l.associated_alpha = l.associated_alpha && l.samples >= 4;
            l.kind = Kind::rgb;
            break;
        case PHOTOMETRIC_SEPARATED:
            if (l.bits != 8 || l.samples < 4 || field16(tif, TIFFTAG_INKSET) != INKSET_CMYK)
                refuse(std::to_string(l.bits) + "-bit separated (not 8-bit CMYK)");
            l.kind = Kind::cmyk;
            break;
        case PHOTOMETRIC_YCBCR:
            if (field16(tif, TIFFTAG_COMPRESSION) != COMPRESSION_JPEG || l.bits != 8)
                refuse("YCbCr without JPEG compression");
            TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);  // libjpeg converts, as PIL has it
            l.kind = Kind::rgb;
            l.samples = 3;
            break;
        default:
            refuse("photometric interpretation " + std::to_string(photometric));
    }
    return l;
}

// The bytes of `count` pixels of a decoded row.
std::uint64_t row_bytes_needed(const Layout& l, std::uint32_t count) {
    return (std::uint64_t(count) * l.samples * l.bits + 7) / 8;
}

// Pixels [x0, x0 + count) of one decoded row (`raw` starts at x0, holds
// row_bytes_needed(count)) into `out` (the image's pixels at x0: 1 channel for
// grey, else 3).
void unpack(const Layout& l, const std::uint8_t* raw, std::uint32_t count, std::uint8_t* out) {
    const int scale = l.bits == 1 ? 255 : l.bits == 2 ? 85 : l.bits == 4 ? 17 : 1;
    for (std::uint32_t x = 0; x < count; ++x) {
        int index = 0;  // grey and palette: the first sample
        if (l.kind == Kind::grey || l.kind == Kind::palette) {
            const std::size_t bit = std::size_t(x) * l.samples * l.bits;
            index = l.bits == 8 ? raw[bit / 8] : (raw[bit / 8] >> (8 - l.bits - int(bit % 8))) & ((1 << l.bits) - 1);
        }
        switch (l.kind) {
            case Kind::grey: {
                const int value = index * scale;
                out[x] = std::uint8_t(l.min_is_white ? 255 - value : value);
                break;
            }
            case Kind::palette:
                std::memcpy(out + 3 * x, &l.palette[3 * index], 3);
                break;
            case Kind::rgb:
                if (l.bits == 16) {
                    const auto* samples = reinterpret_cast<const std::uint16_t*>(raw) + std::size_t(x) * l.samples;
                    for (int c = 0; c < 3; ++c) out[3 * x + c] = std::uint8_t(samples[c] >> 8);
                } else {
                    const std::uint8_t* s = raw + std::size_t(x) * l.samples;
                    const int alpha = l.associated_alpha ? s[3] : 255;
                    for (int c = 0; c < 3; ++c)  // PIL's "RGBa": the colour divided by alpha, 0 where it is 0
                        out[3 * x + c] = alpha == 255 ? s[c]
                                         : alpha == 0 ? 0
                                                      : std::uint8_t(std::min(255, s[c] * 255 / alpha));
                }
                break;
            case Kind::cmyk: {
                const std::uint8_t* s = raw + std::size_t(x) * l.samples;
                for (int c = 0; c < 3; ++c) out[3 * x + c] = cmyk_channel(s[c], 255 - s[3]);
                break;
            }
        }
    }
}

}  // namespace

Image decode_tiff(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits) {
    TiffSource source{data, toff_t(size)};
    const auto fail = [&](const char* what) {
        throw Error(name + ": bad TIFF: " + what + (source.message[0] ? std::string(": ") + source.message : ""));
    };
    const std::unique_ptr<TIFFOpenOptions, void (*)(TIFFOpenOptions*)> options(TIFFOpenOptionsAlloc(),
                                                                               TIFFOpenOptionsFree);
    if (!options) throw Error(name + ": out of memory starting the TIFF decoder");
    TIFFOpenOptionsSetErrorHandlerExtR(options.get(), tiff_error, &source);
    TIFFOpenOptionsSetWarningHandlerExtR(options.get(), tiff_warning, &source);
    // No single allocation of libtiff's (a strip, a tag's values) beyond what an image within limits needs.
    TIFFOpenOptionsSetMaxSingleMemAlloc(
        options.get(), tmsize_t(std::min<std::int64_t>(limits.max_pixels, std::int64_t{1} << 40) * 8 + (16 << 20)));
    const std::unique_ptr<TIFF, void (*)(TIFF*)> tif(
        TIFFClientOpenExt(name.c_str(), "r", &source, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size, tiff_map,
                          tiff_unmap, options.get()),
        TIFFClose);
    if (!tif) fail("cannot read its header");
    std::uint32_t width = 0, height = 0;
    if (!TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &width) || !TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &height))
        fail("no image size");
    check_size(name, width, height, limits);
    const Layout layout = read_layout(tif.get(), name);

    Image image;
    image.width = int(width);
    image.height = int(height);
    image.channels = layout.kind == Kind::grey ? 1 : 3;
    image.pixels.resize(std::size_t(width) * height * image.channels);
    const auto out_at = [&](std::uint32_t x, std::uint32_t y) {
        return image.pixels.data() + (std::size_t(y) * width + x) * image.channels;
    };
    if (TIFFIsTiled(tif.get())) {
        std::uint32_t tile_width = 0, tile_height = 0;
        TIFFGetField(tif.get(), TIFFTAG_TILEWIDTH, &tile_width);
        TIFFGetField(tif.get(), TIFFTAG_TILELENGTH, &tile_height);
        const std::uint64_t tile_bytes = TIFFTileSize64(tif.get()), row_bytes = TIFFTileRowSize64(tif.get());
        if (tile_width == 0 || tile_height == 0 || tile_bytes == 0 || row_bytes * tile_height > tile_bytes ||
            row_bytes < row_bytes_needed(layout, tile_width))
            fail("bad tile size");
        std::vector<std::uint8_t> tile(tile_bytes);
        for (std::uint32_t y0 = 0; y0 < height; y0 += tile_height)
            for (std::uint32_t x0 = 0; x0 < width; x0 += tile_width) {
                if (TIFFReadTile(tif.get(), tile.data(), x0, y0, 0, 0) < 0) fail("cannot decode a tile");
                for (std::uint32_t y = y0; y < std::min(height, y0 + tile_height); ++y)
                    unpack(layout, tile.data() + (y - y0) * row_bytes, std::min(tile_width, width - x0), out_at(x0, y));
            }
    } else {
        const std::uint64_t row_bytes = TIFFScanlineSize64(tif.get());
        if (row_bytes == 0 || row_bytes < row_bytes_needed(layout, width)) fail("bad row size");
        std::vector<std::uint8_t> row(row_bytes);
        for (std::uint32_t y = 0; y < height; ++y) {
            if (TIFFReadScanline(tif.get(), row.data(), y, 0) < 0) fail("cannot decode a row");
            unpack(layout, row.data(), width, out_at(0, y));
        }
    }
    return image;
}

}  // namespace onevit
