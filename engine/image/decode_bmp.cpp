// BMP to 8-bit RGB, the pixels PIL 9.4's BmpImagePlugin gives, by the same
// rules: headers of 12, 40, 64, 108 or 124 bytes; 1-, 4- and 8-bit palettes
// (an index past the file's palette is grey, as PIL's default palette is);
// 16-bit 5-5-5 and 5-6-5; 24-bit; 32-bit with the channel masks PIL knows.
// Run-length-compressed BMPs (RLE4/RLE8) are refused by name.

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include "image/decoders.hpp"
#include "onevit/error.hpp"

namespace onevit {
namespace {

std::uint32_t u16_at(const std::uint8_t* p) { return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8; }
std::uint32_t u32_at(const std::uint8_t* p) { return u16_at(p) | u16_at(p + 2) << 16; }

constexpr std::uint32_t kRaw = 0, kRle8 = 1, kRle4 = 2, kBitfields = 3;

// How a row's pixels are stored: a palette index of `bits` bits, or packed
// colour at the byte offsets of R, G, B (8 bits each), or 16-bit 5-5-5 / 5-6-5.
enum class Layout { palette, bytes, rgb555, rgb565 };

struct BmpHeader {
    std::int64_t width = 0, height = 0;
    bool top_down = false;
    int bits = 0;
    std::uint32_t compression = kRaw;
    std::uint64_t colors = 0;     // palette entries the file declares
    int palette_entry_bytes = 4;  // 3 for the 12-byte header (BGR), else 4 (BGRX)
    std::uint64_t offset = 0;     // of the pixel rows
    Layout layout = Layout::bytes;
    std::array<int, 3> rgb_bytes{2, 1, 0};  // Layout::bytes: where R, G, B are in a pixel
};

struct Masks {
    std::uint32_t r, g, b, a;
};

// The byte of a 32-bit pixel a one-byte mask selects.
int byte_of(std::uint32_t mask) {
    for (int byte = 0; byte < 4; ++byte)
        if (mask == 0xFFu << (8 * byte)) return byte;
    return 0;
}

// PIL's SUPPORTED and MASK_MODES for BI_BITFIELDS.
void apply_bitfields(BmpHeader& h, const Masks& m, const std::string& name) {
    const auto is = [&](std::uint32_t r, std::uint32_t g, std::uint32_t b) { return m.r == r && m.g == g && m.b == b; };
    if (h.bits == 32) {
        const bool known = (is(0xFF0000, 0xFF00, 0xFF) && (m.a == 0 || m.a == 0xFF000000)) ||
                           (is(0xFF000000, 0xFF0000, 0xFF00) && (m.a == 0 || m.a == 0xFF)) ||
                           (is(0xFF, 0xFF00, 0xFF0000) && m.a == 0xFF000000);
        if (is(0, 0, 0) && m.a == 0) return;  // PIL reads all-zero masks as BGRA
        if (!known) throw Error(name + ": unsupported BMP bitfields layout");
        h.rgb_bytes = {byte_of(m.r), byte_of(m.g), byte_of(m.b)};
    } else if (h.bits == 24 && is(0xFF0000, 0xFF00, 0xFF)) {
        return;
    } else if (h.bits == 16 && is(0xF800, 0x7E0, 0x1F)) {
        h.layout = Layout::rgb565;
    } else if (h.bits == 16 && is(0x7C00, 0x3E0, 0x1F)) {
        h.layout = Layout::rgb555;
    } else {
        throw Error(name + ": unsupported BMP bitfields layout");
    }
}

BmpHeader read_header(const std::uint8_t* data, std::size_t size, const std::string& name) {
    if (size < 18) throw Error(name + ": bad BMP: file is truncated (" + std::to_string(size) + " bytes)");
    BmpHeader h;
    const std::uint32_t header_size = u32_at(data + 14);
    if (size < 14 + std::uint64_t{header_size}) throw Error(name + ": bad BMP: file is truncated inside its header");
    const std::uint8_t* p = data + 18;
    if (header_size == 12) {
        h.width = u16_at(p);
        h.height = u16_at(p + 2);
        h.bits = int(u16_at(p + 6));
        h.palette_entry_bytes = 3;
    } else if (header_size == 40 || header_size == 64 || header_size == 108 || header_size == 124) {
        h.top_down = p[7] == 0xFF;
        h.width = u32_at(p);
        h.height = h.top_down ? (std::int64_t{1} << 32) - u32_at(p + 4) : u32_at(p + 4);
        h.bits = int(u16_at(p + 10));
        h.compression = u32_at(p + 12);
        h.colors = u32_at(p + 28);
    } else {
        throw Error(name + ": unsupported BMP header size " + std::to_string(header_size));
    }
    if (h.bits != 1 && h.bits != 4 && h.bits != 8 && h.bits != 16 && h.bits != 24 && h.bits != 32)
        throw Error(name + ": unsupported BMP pixel depth " + std::to_string(h.bits));
    if (h.colors == 0) h.colors = std::uint64_t{1} << h.bits;
    h.offset = u32_at(data + 10);
    // PIL: pixel rows said to start right after the header start after the palette.
    if (h.offset == 14 + std::uint64_t{header_size} && h.bits <= 8) h.offset += 4 * h.colors;

    if (h.bits <= 8) h.layout = Layout::palette;
    if (h.bits == 16) h.layout = Layout::rgb555;
    if (h.compression == kBitfields) {
        if (size < 70) throw Error(name + ": bad BMP: file is truncated inside its channel masks");
        // Masks after the 40-byte header, or inside the longer ones: at byte 54 either way.
        apply_bitfields(
            h, {u32_at(data + 54), u32_at(data + 58), u32_at(data + 62), header_size >= 56 ? u32_at(data + 66) : 0},
            name);
    } else if (h.compression == kRle8 || h.compression == kRle4) {
        throw Error(name + ": unsupported BMP compression (run-length encoded)");
    } else if (h.compression != kRaw) {
        throw Error(name + ": unsupported BMP compression " + std::to_string(h.compression));
    }
    if (h.layout == Layout::palette && h.colors > 65536)
        throw Error(name + ": unsupported BMP palette size " + std::to_string(h.colors));
    return h;
}

// The palette as RGB: PIL's default greyscale ramp, overwritten by the file's entries.
std::array<std::uint8_t, 256 * 3> read_palette(const std::uint8_t* data, std::size_t size, const BmpHeader& h,
                                               std::uint32_t header_size) {
    std::array<std::uint8_t, 256 * 3> rgb;
    for (int i = 0; i < 256; ++i) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = std::uint8_t(i);
    const std::uint64_t start = 14 + std::uint64_t{header_size};
    const std::uint64_t available = size > start ? (size - start) / h.palette_entry_bytes : 0;
    const std::uint64_t entries = std::min<std::uint64_t>({h.colors, available, 256});
    for (std::uint64_t i = 0; i < entries; ++i) {
        const std::uint8_t* bgr = data + start + i * h.palette_entry_bytes;
        rgb[3 * i] = bgr[2];
        rgb[3 * i + 1] = bgr[1];
        rgb[3 * i + 2] = bgr[0];
    }
    return rgb;
}

// PIL's BGR;15 / BGR;16 unpackers: each field scaled to 0..255 with truncation.
void unpack_16(std::uint32_t pixel, bool rgb565, std::uint8_t* out) {
    if (rgb565) {
        out[0] = std::uint8_t(((pixel >> 11) & 31) * 255 / 31);
        out[1] = std::uint8_t(((pixel >> 5) & 63) * 255 / 63);
    } else {
        out[0] = std::uint8_t(((pixel >> 10) & 31) * 255 / 31);
        out[1] = std::uint8_t(((pixel >> 5) & 31) * 255 / 31);
    }
    out[2] = std::uint8_t((pixel & 31) * 255 / 31);
}

}  // namespace

Image decode_bmp(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits) {
    const BmpHeader h = read_header(data, size, name);
    check_size(name, h.width, h.height, limits);
    const std::uint64_t stride = ((std::uint64_t(h.width) * h.bits + 31) >> 3) & ~std::uint64_t{3};
    if (h.offset > size || (size - h.offset) / stride < std::uint64_t(h.height))
        throw Error(name + ": bad BMP: pixel data is truncated");
    const auto palette = read_palette(data, size, h, u32_at(data + 14));

    Image image;
    image.width = int(h.width);
    image.height = int(h.height);
    image.channels = 3;
    image.pixels.resize(std::size_t(h.width) * h.height * 3);
    const int bytes_per_pixel = h.bits / 8;
    for (std::int64_t y = 0; y < h.height; ++y) {
        const std::uint8_t* row = data + h.offset + stride * std::uint64_t(h.top_down ? y : h.height - 1 - y);
        std::uint8_t* out = image.pixels.data() + std::size_t(y) * h.width * 3;
        for (std::int64_t x = 0; x < h.width; ++x, out += 3) {
            switch (h.layout) {
                case Layout::palette: {
                    const std::uint64_t bit = std::uint64_t(x) * h.bits;
                    const int shift = 8 - h.bits - int(bit % 8);  // the first pixel in the high bits
                    const int index = (row[bit / 8] >> shift) & ((1 << h.bits) - 1);
                    std::memcpy(out, &palette[3 * index], 3);
                    break;
                }
                case Layout::bytes: {
                    const std::uint8_t* pixel = row + x * bytes_per_pixel;
                    for (int c = 0; c < 3; ++c) out[c] = pixel[h.rgb_bytes[c]];
                    break;
                }
                case Layout::rgb555:
                case Layout::rgb565:
                    unpack_16(u16_at(row + 2 * x), h.layout == Layout::rgb565, out);
                    break;
            }
        }
    }
    return image;
}

}  // namespace onevit
