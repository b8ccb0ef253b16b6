// Tiny PNG (libpng) and JPEG (libjpeg) files in memory, in the variants a
// decoder has to handle: every PNG colour type and bit depth, interlacing,
// grey / RGB / CMYK JPEG, progressive, restart markers, arithmetic coding.
// Plus hand-made headers that claim any size. Header-only; link libpng, libjpeg.
#pragma once

#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

namespace onevit::synthetic {

using ImageBytes = std::vector<std::uint8_t>;

// A smooth pattern with some noise: compresses like a photo, not like a constant.
inline std::uint8_t pattern(int x, int y, int c, std::uint32_t seed) {
    std::uint32_t h = (static_cast<std::uint32_t>(x) * 73856093u) ^ (static_cast<std::uint32_t>(y) * 19349663u) ^
                      (static_cast<std::uint32_t>(c) * 83492791u) ^ seed;
    h ^= h >> 13;
    return static_cast<std::uint8_t>((x * 7 + y * 5 + c * 60) + (h & 15));
}

struct PngOptions {
    int width = 8, height = 6;
    int color_type = PNG_COLOR_TYPE_RGB;  // GRAY, GRAY_ALPHA, RGB, RGB_ALPHA, PALETTE
    int bit_depth = 8;                    // 1, 2, 4, 8, 16 as the colour type allows
    bool interlace = false;
    std::uint32_t seed = 1;
};

namespace detail {
struct PngSink {
    ImageBytes bytes;
    char message[200] = {};
};
inline void png_sink_write(png_structp png, png_bytep data, png_size_t n) {
    auto* sink = static_cast<PngSink*>(png_get_io_ptr(png));
    sink->bytes.insert(sink->bytes.end(), data, data + n);
}
inline void png_sink_flush(png_structp) {}
[[noreturn]] inline void png_sink_error(png_structp png, png_const_charp message) {
    auto* sink = static_cast<PngSink*>(png_get_error_ptr(png));
    std::snprintf(sink->message, sizeof sink->message, "%s", message);
    png_longjmp(png, 1);
}
// Only trivially destructible locals: libpng errors longjmp out of here.
inline bool png_encode(png_structp png, png_infop info, const PngOptions& o, png_bytepp rows, png_colorp palette) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_IHDR(png, info, o.width, o.height, o.bit_depth, o.color_type,
                 o.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (o.color_type == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, palette, 1 << o.bit_depth);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
    return true;
}
}  // namespace detail

inline ImageBytes encode_png(const PngOptions& o) {
    int samples = 1;
    switch (o.color_type) {
        case PNG_COLOR_TYPE_GRAY_ALPHA:
            samples = 2;
            break;
        case PNG_COLOR_TYPE_RGB:
            samples = 3;
            break;
        case PNG_COLOR_TYPE_RGB_ALPHA:
            samples = 4;
            break;
        default:
            samples = 1;
    }
    const std::size_t row_bytes = (static_cast<std::size_t>(o.width) * samples * o.bit_depth + 7) / 8;
    std::vector<std::uint8_t> pixels(row_bytes * o.height, 0);
    for (int y = 0; y < o.height; ++y)
        for (std::size_t i = 0; i < row_bytes; ++i)
            pixels[y * row_bytes + i] = pattern(static_cast<int>(i), y, 0, o.seed);
    std::vector<png_bytep> rows(o.height);
    for (int y = 0; y < o.height; ++y) rows[y] = pixels.data() + y * row_bytes;
    std::vector<png_color> palette(256);
    for (int i = 0; i < 256; ++i)
        palette[i] = {static_cast<png_byte>(i), static_cast<png_byte>(255 - i), static_cast<png_byte>(i * 3)};

    detail::PngSink sink;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, detail::png_sink_error, nullptr);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!info) throw std::runtime_error("encode_png: out of memory");
    png_set_write_fn(png, &sink, detail::png_sink_write, detail::png_sink_flush);
    const bool ok = detail::png_encode(png, info, o, rows.data(), palette.data());
    png_destroy_write_struct(&png, &info);
    if (!ok) throw std::runtime_error(std::string("encode_png: ") + sink.message);
    return std::move(sink.bytes);
}

struct JpegOptions {
    int width = 16, height = 12;
    int components = 3;  // 1 grey, 3 RGB (stored YCbCr), 4 CMYK (Adobe)
    bool progressive = false;
    bool arithmetic = false;
    int restart_rows = 0;  // restart marker every this many MCU rows
    int quality = 90;
    bool subsample = true;  // 4:2:0, else 4:4:4
    std::uint32_t seed = 1;
};

namespace detail {
struct JpegSinkErrors {
    jpeg_error_mgr pub;
    std::jmp_buf jump;
};
[[noreturn]] inline void jpeg_sink_error(j_common_ptr cinfo) {
    std::longjmp(reinterpret_cast<JpegSinkErrors*>(cinfo->err)->jump, 1);
}
// Only trivially destructible locals: libjpeg errors longjmp out of here.
inline bool jpeg_encode(jpeg_compress_struct* cinfo, JpegSinkErrors* errors, const JpegOptions& o,
                        const std::uint8_t* pixels, unsigned char** out, unsigned long* out_size) {
    if (setjmp(errors->jump)) return false;
    jpeg_create_compress(cinfo);
    jpeg_mem_dest(cinfo, out, out_size);
    cinfo->image_width = o.width;
    cinfo->image_height = o.height;
    cinfo->input_components = o.components;
    cinfo->in_color_space = o.components == 1 ? JCS_GRAYSCALE : o.components == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, o.quality, TRUE);
    if (o.progressive) jpeg_simple_progression(cinfo);
    cinfo->arith_code = o.arithmetic ? TRUE : FALSE;
    cinfo->restart_in_rows = o.restart_rows;
    if (!o.subsample && o.components == 3)
        for (int c = 0; c < 3; ++c) cinfo->comp_info[c].h_samp_factor = cinfo->comp_info[c].v_samp_factor = 1;
    jpeg_start_compress(cinfo, TRUE);
    const std::size_t stride = static_cast<std::size_t>(o.width) * o.components;
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(pixels + stride * cinfo->next_scanline);
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
    return true;
}
}  // namespace detail

inline ImageBytes encode_jpeg(const JpegOptions& o) {
    std::vector<std::uint8_t> pixels(static_cast<std::size_t>(o.width) * o.height * o.components);
    for (int y = 0; y < o.height; ++y)
        for (int x = 0; x < o.width; ++x)
            for (int c = 0; c < o.components; ++c)
                pixels[(static_cast<std::size_t>(y) * o.width + x) * o.components + c] = pattern(x, y, c, o.seed);
    jpeg_compress_struct cinfo{};
    detail::JpegSinkErrors errors{};
    cinfo.err = jpeg_std_error(&errors.pub);
    errors.pub.error_exit = detail::jpeg_sink_error;
    unsigned char* out = nullptr;
    unsigned long out_size = 0;
    const bool ok = detail::jpeg_encode(&cinfo, &errors, o, pixels.data(), &out, &out_size);
    jpeg_destroy_compress(&cinfo);
    ImageBytes bytes;
    if (ok) bytes.assign(out, out + out_size);
    std::free(out);
    if (!ok) throw std::runtime_error("encode_jpeg: libjpeg failed");
    return bytes;
}

// A PNG signature and an IHDR chunk (with a correct CRC) claiming any size,
// followed by `tail` (e.g. nothing, or garbage).
inline ImageBytes png_header_only(std::uint32_t width, std::uint32_t height, int bit_depth = 8,
                                  int color_type = PNG_COLOR_TYPE_RGB, const ImageBytes& tail = {}) {
    ImageBytes b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    auto be32 = [&](std::uint32_t v) {
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
    };
    be32(width);
    be32(height);
    b.insert(b.end(), {static_cast<std::uint8_t>(bit_depth), static_cast<std::uint8_t>(color_type), 0, 0, 0});
    be32(static_cast<std::uint32_t>(crc32(0, b.data() + 12, 17)));
    b.insert(b.end(), tail.begin(), tail.end());
    return b;
}

// The offset of a JPEG's SOFn marker segment (FF C0..CF except C4, C8, CC), or 0.
inline std::size_t jpeg_sof(const ImageBytes& b) {
    std::size_t i = 2;
    while (i + 4 <= b.size() && b[i] == 0xFF) {
        const std::uint8_t m = b[i + 1];
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) return i;
        i += 2 + (static_cast<std::size_t>(b[i + 2]) << 8 | b[i + 3]);
    }
    return 0;
}

// The JPEG with its frame header saying width × height (pixel data unchanged).
inline ImageBytes jpeg_with_size(ImageBytes b, std::uint16_t width, std::uint16_t height) {
    const std::size_t sof = jpeg_sof(b);
    if (sof == 0) throw std::runtime_error("jpeg_with_size: no SOF marker");
    b[sof + 5] = static_cast<std::uint8_t>(height >> 8);
    b[sof + 6] = static_cast<std::uint8_t>(height);
    b[sof + 7] = static_cast<std::uint8_t>(width >> 8);
    b[sof + 8] = static_cast<std::uint8_t>(width);
    return b;
}

}  // namespace onevit::synthetic
