// Decoding, resizing and preprocessing. The *.expected.png fixtures under
// tests/data/images are PIL 9.4 / torchvision 0.14 outputs written by
// tests/data/make_image_fixtures.py; PNG variants and broken files are made
// here with libpng and libjpeg.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "onevit/error.hpp"
#include "onevit/image.hpp"
#include "image/resize.hpp"
#include "jpeg_writer.hpp"

#ifndef ONEVIT_TEST_DATA_DIR
#error "ONEVIT_TEST_DATA_DIR must name the tests/data directory"
#endif

namespace {

namespace fs = std::filesystem;
using onevit::Image;
using onevit::Interpolation;
using Bytes = std::vector<std::uint8_t>;

std::string fixture(const std::string& name) { return std::string(ONEVIT_TEST_DATA_DIR) + "/images/" + name; }

// Runs `f` and returns the onevit::Error message it throws ("" if none).
template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const onevit::Error& e) {
        return e.what();
    }
    return "";
}

Image make_image(int width, int height, int channels, Bytes pixels) {
    Image image;
    image.width = width;
    image.height = height;
    image.channels = channels;
    image.pixels = std::move(pixels);
    return image;
}

Bytes random_bytes(std::size_t n, int lo, int hi, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> dist(lo, hi);
    Bytes out(n);
    for (auto& b : out) b = static_cast<std::uint8_t>(dist(rng));
    return out;
}

std::uint8_t pil_luma(int r, int g, int b) {
    return static_cast<std::uint8_t>((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

// ------------------------------------------------------------ PNG writing

struct PngSpec {
    int width = 0;
    int height = 0;
    int color_type = PNG_COLOR_TYPE_RGB;
    int bit_depth = 8;
    bool interlaced = false;
    Bytes rows;  // packed rows as the PNG stores them, big-endian samples
    std::vector<png_color> palette;
    Bytes palette_alpha;  // tRNS for a palette image
};

void append_bytes(png_structp png, png_bytep data, png_size_t n) {
    auto* out = static_cast<Bytes*>(png_get_io_ptr(png));
    out->insert(out->end(), data, data + n);
}

PngSpec png_spec(int width, int height, int color_type = PNG_COLOR_TYPE_RGB, int bit_depth = 8,
                 bool interlaced = false) {
    PngSpec spec;
    spec.width = width;
    spec.height = height;
    spec.color_type = color_type;
    spec.bit_depth = bit_depth;
    spec.interlaced = interlaced;
    return spec;
}

Bytes write_png(const PngSpec& spec) {
    Bytes out;
    const std::size_t stride = spec.rows.size() / spec.height;
    std::vector<png_bytep> rows(spec.height);
    for (int y = 0; y < spec.height; ++y) rows[y] = const_cast<png_bytep>(spec.rows.data() + stride * y);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        ADD_FAILURE() << "libpng failed writing a test image";
        return {};
    }
    png_set_write_fn(png, &out, append_bytes, nullptr);
    png_set_IHDR(png, info, spec.width, spec.height, spec.bit_depth, spec.color_type,
                 spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (!spec.palette.empty()) png_set_PLTE(png, info, spec.palette.data(), static_cast<int>(spec.palette.size()));
    if (!spec.palette_alpha.empty())
        png_set_tRNS(png, info, spec.palette_alpha.data(), static_cast<int>(spec.palette_alpha.size()), nullptr);
    png_write_info(png, info);
    if (spec.interlaced) png_set_interlace_handling(png);
    png_write_image(png, rows.data());
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return out;
}

Image decode(const Bytes& bytes, int channels = 3) {
    return onevit::decode_image_bytes(bytes.data(), bytes.size(), channels);
}

// ------------------------------------------------------------ JPEG writing

using onevit::test_support::write_jpeg;

Image smooth_rgb(int width, int height) {
    Bytes p(static_cast<std::size_t>(width) * height * 3);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
            std::uint8_t* px = &p[(static_cast<std::size_t>(y) * width + x) * 3];
            px[0] = static_cast<std::uint8_t>(x * 255 / width);
            px[1] = static_cast<std::uint8_t>(y * 255 / height);
            px[2] = static_cast<std::uint8_t>(128 + 100 * std::sin((x + y) * 0.2));
        }
    return make_image(width, height, 3, std::move(p));
}

// ------------------------------------------------------------ PNG decoding

TEST(DecodePng, RgbRoundTripsAndGreyIsPilLuma) {
    PngSpec spec = png_spec(7, 5);
    spec.rows = random_bytes(7 * 5 * 3, 0, 255, 1);
    const Image rgb = decode(write_png(spec));
    EXPECT_EQ(rgb.width, 7);
    EXPECT_EQ(rgb.height, 5);
    EXPECT_EQ(rgb.channels, 3);
    EXPECT_EQ(rgb.pixels, spec.rows);

    const Image grey = decode(write_png(spec), 1);
    ASSERT_EQ(grey.channels, 1);
    for (std::size_t i = 0; i < grey.pixels.size(); ++i)
        EXPECT_EQ(grey.pixels[i], pil_luma(spec.rows[3 * i], spec.rows[3 * i + 1], spec.rows[3 * i + 2]));
}

TEST(DecodePng, PilLumaOfPrimaries) {
    PngSpec spec = png_spec(3, 1);
    spec.rows = {255, 0, 0, 0, 255, 0, 0, 0, 255};
    // PIL: Image.new('RGB', ...).convert('L') gives 76, 150, 29.
    EXPECT_EQ(decode(write_png(spec), 1).pixels, (Bytes{76, 150, 29}));
}

TEST(DecodePng, AlphaIsDropped) {
    PngSpec spec = png_spec(4, 3, PNG_COLOR_TYPE_RGB_ALPHA);
    spec.rows = random_bytes(4 * 3 * 4, 0, 255, 2);
    Bytes rgb;
    for (std::size_t i = 0; i < spec.rows.size(); i += 4)
        rgb.insert(rgb.end(), spec.rows.begin() + i, spec.rows.begin() + i + 3);
    EXPECT_EQ(decode(write_png(spec)).pixels, rgb);

    PngSpec grey_alpha = png_spec(4, 3, PNG_COLOR_TYPE_GRAY_ALPHA);
    grey_alpha.rows = random_bytes(4 * 3 * 2, 0, 255, 3);
    Bytes grey, grey_as_rgb;
    for (std::size_t i = 0; i < grey_alpha.rows.size(); i += 2) {
        grey.push_back(grey_alpha.rows[i]);
        grey_as_rgb.insert(grey_as_rgb.end(), 3, grey_alpha.rows[i]);
    }
    EXPECT_EQ(decode(write_png(grey_alpha), 1).pixels, grey);
    EXPECT_EQ(decode(write_png(grey_alpha)).pixels, grey_as_rgb);
}

TEST(DecodePng, PaletteWithTransparency) {
    PngSpec spec = png_spec(5, 2, PNG_COLOR_TYPE_PALETTE, 4);
    spec.palette = {{10, 20, 30}, {200, 100, 0}, {1, 2, 3}};
    spec.palette_alpha = {0, 128};
    const Bytes index = {0, 1, 2, 1, 0, 2, 2, 1, 0, 0};
    for (int y = 0; y < 2; ++y)  // 4-bit packed, 3 bytes per row
        for (int x = 0; x < 6; x += 2) {
            const int hi = index[y * 5 + x];
            const int lo = x + 1 < 5 ? index[y * 5 + x + 1] : 0;
            spec.rows.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
        }
    Bytes expected;
    for (std::uint8_t i : index)
        expected.insert(expected.end(), {spec.palette[i].red, spec.palette[i].green, spec.palette[i].blue});
    EXPECT_EQ(decode(write_png(spec)).pixels, expected);
}

TEST(DecodePng, LowBitGreyIsScaledToEightBits) {
    for (int bits : {1, 2, 4}) {
        PngSpec spec = png_spec(8, 1, PNG_COLOR_TYPE_GRAY, bits);
        const int max = (1 << bits) - 1;
        Bytes values;
        std::uint32_t packed = 0;
        for (int x = 0; x < 8; ++x) {
            const int v = x % (max + 1);
            values.push_back(static_cast<std::uint8_t>(v * 255 / max));
            packed = packed << bits | v;
        }
        for (int byte = bits - 1; byte >= 0; --byte)
            spec.rows.push_back(static_cast<std::uint8_t>(packed >> (8 * byte)));
        EXPECT_EQ(decode(write_png(spec), 1).pixels, values) << bits << "-bit";
    }
}

TEST(DecodePng, SixteenBitKeepsHighByte) {
    PngSpec spec = png_spec(3, 2, PNG_COLOR_TYPE_RGB, 16);
    spec.rows = random_bytes(3 * 2 * 6, 0, 255, 4);
    Bytes high;
    for (std::size_t i = 0; i < spec.rows.size(); i += 2) high.push_back(spec.rows[i]);
    EXPECT_EQ(decode(write_png(spec)).pixels, high);

    PngSpec grey = png_spec(3, 2, PNG_COLOR_TYPE_GRAY, 16);
    grey.rows = random_bytes(3 * 2 * 2, 0, 255, 5);
    Bytes grey_high;
    for (std::size_t i = 0; i < grey.rows.size(); i += 2) grey_high.push_back(grey.rows[i]);
    EXPECT_EQ(decode(write_png(grey), 1).pixels, grey_high);
}

TEST(DecodePng, Interlaced) {
    PngSpec spec = png_spec(13, 11, PNG_COLOR_TYPE_RGB, 8, true);
    spec.rows = random_bytes(13 * 11 * 3, 0, 255, 6);
    EXPECT_EQ(decode(write_png(spec)).pixels, spec.rows);
}

// ------------------------------------------------------------ JPEG decoding

TEST(DecodeJpeg, MatchesPilDecode) {
    for (const char* name : {"baseline.jpg", "progressive.jpg", "grey.jpg", "cmyk.jpg"}) {
        const std::string base = fixture(name);
        EXPECT_EQ(onevit::decode_image(base, 3).pixels, onevit::decode_image(base + ".rgb.expected.png", 3).pixels)
            << name;
        EXPECT_EQ(onevit::decode_image(base, 1).pixels, onevit::decode_image(base + ".l.expected.png", 1).pixels)
            << name;
    }
}

TEST(DecodeJpeg, ProgressiveDecodesLikeBaseline) {
    // Same quantised coefficients, sent in one scan or several.
    const Image source = smooth_rgb(45, 37);
    const Image baseline = decode(write_jpeg(source, false));
    const Image progressive = decode(write_jpeg(source, true));
    EXPECT_EQ(baseline.width, 45);
    EXPECT_EQ(baseline.height, 37);
    EXPECT_EQ(progressive.pixels, baseline.pixels);
}

// ------------------------------------------------------------ WebP, BMP, TIFF decoding

// Each fixture is src_rgb.png written in another format and layout (by PIL, by
// hand or by ImageMagick: tests/data/make_image_fixtures.py), beside PIL's decode.
const char* const kOtherFormats[] = {"lossy.webp",   "lossless.webp", "alpha.webp",       "rgb24.bmp", "palette8.bmp",
                                     "palette4.bmp", "rgb565.bmp",    "xbgr_topdown.bmp", "lzw.tif",   "jpeg.tif",
                                     "cmyk.tif",     "rgb16.tif",     "tiled.tif"};

TEST(DecodeOtherFormats, MatchPilDecode) {
    for (const char* name : kOtherFormats) {
        const std::string base = fixture(name);
        EXPECT_EQ(onevit::decode_image(base, 3).pixels, onevit::decode_image(base + ".rgb.expected.png", 3).pixels)
            << name;
        EXPECT_EQ(onevit::decode_image(base, 1).pixels, onevit::decode_image(base + ".l.expected.png", 1).pixels)
            << name;
    }
}

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The whole file through a pipe, as `onevit classify -` reads stdin.
TEST(DecodeOtherFormats, FromAPipe) {
    for (const char* name : {"baseline.jpg", "lossy.webp", "rgb24.bmp", "lzw.tif"}) {
        const Bytes bytes = read_bytes(fixture(name));
        int ends[2];
        ASSERT_EQ(pipe(ends), 0);
        std::thread writer([&] {
            for (std::size_t done = 0; done < bytes.size();) {
                const ssize_t n = write(ends[1], bytes.data() + done, bytes.size() - done);
                if (n <= 0) break;
                done += std::size_t(n);
            }
            close(ends[1]);
        });
        Image image;
        const std::string message = error_of([&] { image = onevit::decode_image_fd(ends[0], "-"); });
        writer.join();
        close(ends[0]);
        EXPECT_EQ(message, "") << name;
        EXPECT_EQ(image.pixels, onevit::decode_image(fixture(name)).pixels) << name;
    }
    int ends[2];
    ASSERT_EQ(pipe(ends), 0);
    close(ends[1]);
    EXPECT_EQ(error_of([&] { onevit::decode_image_fd(ends[0], "-"); }), "-: file is empty");
    close(ends[0]);
    EXPECT_NE(error_of([] { onevit::decode_image_fd(-1, "-"); }).find("-: read failed"), std::string::npos);
}

TEST(DecodeOtherFormats, ImageExtensionsAreTheDecodersFormats) {
    for (const char* name : {"a.jpg", "dir/b.JPEG", "c.png", "d.webp", "e.Bmp", "f.tif", "g.TIFF", ".x/h.jpg"})
        EXPECT_TRUE(onevit::has_image_extension(name)) << name;
    for (const char* name : {"a.gif", "jpg", "b.jpg.txt", "dir.png/readme", "c.", ""})
        EXPECT_FALSE(onevit::has_image_extension(name)) << name;
}

// ------------------------------------------------------------ bad input

class DecodeErrors : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) /
               (std::string("onevit_image_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string file(const std::string& name, const Bytes& bytes) const {
        const std::string path = (dir_ / name).string();
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        return path;
    }
    // The message from decoding `bytes` stored as a file: it must name the file.
    std::string file_error(const std::string& name, const Bytes& bytes) const {
        const std::string path = file(name, bytes);
        const std::string message = error_of([&] { onevit::decode_image(path); });
        EXPECT_NE(message.find(path), std::string::npos) << message;
        return message;
    }

    fs::path dir_;
};

Bytes valid_jpeg() { return write_jpeg(smooth_rgb(64, 48), false); }

Bytes png_header_only(std::uint32_t width, std::uint32_t height) {
    Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    Bytes chunk = {0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (std::uint32_t v : {width, height})
        for (int shift = 24; shift >= 0; shift -= 8) chunk.push_back(static_cast<std::uint8_t>(v >> shift));
    chunk.insert(chunk.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, not interlaced
    const std::uint32_t crc = static_cast<std::uint32_t>(crc32(0, chunk.data() + 4, 17));
    for (int shift = 24; shift >= 0; shift -= 8) chunk.push_back(static_cast<std::uint8_t>(crc >> shift));
    out.insert(out.end(), chunk.begin(), chunk.end());
    return out;
}

TEST_F(DecodeErrors, EmptyFile) {
    EXPECT_NE(file_error("empty.jpg", {}).find("empty"), std::string::npos);
    EXPECT_NE(error_of([] { onevit::decode_image_bytes(nullptr, 0); }), "");
}

TEST_F(DecodeErrors, GarbageBytes) {
    EXPECT_NE(file_error("garbage.jpg", random_bytes(1000, 0, 255, 7)).find("not a JPEG, PNG, WebP, BMP or TIFF"),
              std::string::npos);
}

// Cut in half or after the header, every other format is refused in one line naming it.
TEST_F(DecodeErrors, TruncatedWebpBmpTiff) {
    for (const auto& [name, format] : {std::pair{"lossy.webp", "WebP"},
                                       {"lossless.webp", "WebP"},
                                       {"rgb24.bmp", "BMP"},
                                       {"palette4.bmp", "BMP"},
                                       {"lzw.tif", "TIFF"},
                                       {"jpeg.tif", "TIFF"},
                                       {"tiled.tif", "TIFF"},
                                       {"rgb16.tif", "TIFF"}}) {
        const Bytes bytes = read_bytes(fixture(name));
        for (std::size_t length : {bytes.size() / 2, std::size_t(20), std::size_t(8)}) {
            const std::string message =
                file_error(std::string("cut_") + name, Bytes(bytes.begin(), bytes.begin() + std::ptrdiff_t(length)));
            EXPECT_NE(message.find(format), std::string::npos) << name << " cut at " << length << ": " << message;
            EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        }
    }
}

TEST_F(DecodeErrors, UnsupportedBmpAndTiffLayoutsAreNamed) {
    Bytes bmp = read_bytes(fixture("rgb24.bmp"));
    bmp[30] = 1;  // compression: RLE8
    EXPECT_NE(file_error("rle.bmp", bmp).find("run-length"), std::string::npos);
    bmp[30] = 0;
    bmp[28] = 7;  // bits per pixel
    EXPECT_NE(file_error("bits7.bmp", bmp).find("pixel depth 7"), std::string::npos);
    bmp[28] = 24;
    bmp[14] = 52;  // header size
    EXPECT_NE(file_error("header52.bmp", bmp).find("header size 52"), std::string::npos);
}

TEST_F(DecodeErrors, FormatComesFromContentNotExtension) {
    PngSpec spec = png_spec(2, 2);
    spec.rows = random_bytes(12, 0, 255, 8);
    EXPECT_EQ(onevit::decode_image(file("really_a_png.jpg", write_png(spec))).pixels, spec.rows);
}

TEST_F(DecodeErrors, DirectoryAndMissingPath) {
    const std::string dir = dir_.string();
    EXPECT_NE(error_of([&] { onevit::decode_image(dir); }).find(dir), std::string::npos);
    const std::string missing = (dir_ / "missing.jpg").string();
    EXPECT_NE(error_of([&] { onevit::decode_image(missing); }).find(missing), std::string::npos);
}

TEST_F(DecodeErrors, TruncatedJpeg) {
    const Bytes jpeg = valid_jpeg();
    EXPECT_NE(file_error("half.jpg", Bytes(jpeg.begin(), jpeg.begin() + jpeg.size() / 2)), "");
    // Only the end-of-image marker missing: still a truncated file.
    EXPECT_NE(file_error("no_eoi.jpg", Bytes(jpeg.begin(), jpeg.end() - 2)), "");
    EXPECT_NE(file_error("header.jpg", Bytes(jpeg.begin(), jpeg.begin() + 20)), "");
}

TEST_F(DecodeErrors, CorruptJpegData) {
    Bytes jpeg = valid_jpeg();
    // Entropy-coded data starts after the SOS header; a marker dropped into it
    // ends the scan early.
    const std::size_t middle = jpeg.size() * 3 / 4;
    jpeg[middle] = 0xFF;
    jpeg[middle + 1] = 0xD0;  // RST0 where none belongs
    EXPECT_NE(file_error("corrupt.jpg", jpeg), "");
}

TEST_F(DecodeErrors, TruncatedAndCorruptPng) {
    PngSpec spec = png_spec(40, 30);
    spec.rows = random_bytes(40 * 30 * 3, 0, 255, 9);
    Bytes png = write_png(spec);
    EXPECT_NE(file_error("cut.png", Bytes(png.begin(), png.begin() + png.size() / 2)), "");
    EXPECT_NE(file_error("header.png", png_header_only(40, 30)), "");
    png[png.size() / 2] ^= 0x55;  // inside IDAT: the CRC no longer matches
    EXPECT_NE(file_error("crc.png", png), "");
}

TEST_F(DecodeErrors, HugeHeadersAreRefusedBeforeDecoding) {
    // Nothing follows the header, so only a size check can produce this message.
    EXPECT_NE(file_error("huge.png", png_header_only(20000, 20000)).find("limit"), std::string::npos);

    Bytes jpeg = valid_jpeg();
    // Patch the SOF0 frame size (FFC0, length, precision, height, width) to 60000x60000.
    std::size_t sof = 2;
    while (sof + 1 < jpeg.size() && !(jpeg[sof] == 0xFF && jpeg[sof + 1] == 0xC0)) ++sof;
    ASSERT_LT(sof + 9, jpeg.size());
    for (std::size_t i : {sof + 5, sof + 7}) {
        jpeg[i] = 60000 >> 8;
        jpeg[i + 1] = 60000 & 0xFF;
    }
    EXPECT_NE(file_error("huge.jpg", jpeg).find("limit"), std::string::npos);

    onevit::DecodeLimits small;
    small.max_pixels = 64 * 48 - 1;
    const Bytes ok = valid_jpeg();
    EXPECT_NE(error_of([&] { onevit::decode_image_bytes(ok.data(), ok.size(), 3, small); }).find("limit"),
              std::string::npos);
}

TEST_F(DecodeErrors, BadChannelCount) {
    const Bytes jpeg = valid_jpeg();
    EXPECT_NE(error_of([&] { onevit::decode_image_bytes(jpeg.data(), jpeg.size(), 4); }), "");
}

// ------------------------------------------------------------ resize

TEST(Resize, ConstantImageStaysConstant) {
    for (int channels : {1, 3})
        for (Interpolation f : {Interpolation::nearest, Interpolation::bilinear, Interpolation::bicubic})
            for (auto [w, h] : {std::pair{7, 5}, {50, 40}, {9, 33}, {23, 17}}) {
                const Image in = make_image(23, 17, channels, Bytes(23 * 17 * channels, 173));
                const Image out = onevit::resize(in, w, h, f);
                EXPECT_EQ(out.width, w);
                EXPECT_EQ(out.height, h);
                EXPECT_EQ(out.pixels, Bytes(static_cast<std::size_t>(w) * h * channels, 173));
            }
}

TEST(Resize, MatchesPil) {
    const Image rgb = onevit::decode_image(fixture("src_rgb.png"), 3);
    const Image grey = onevit::decode_image(fixture("src_rgb.png"), 1);
    const std::pair<const char*, Interpolation> filters[] = {{"nearest", Interpolation::nearest},
                                                             {"bilinear", Interpolation::bilinear},
                                                             {"bicubic", Interpolation::bicubic}};
    for (const auto& [mode, in] : {std::pair{"rgb", &rgb}, {"l", &grey}})
        for (const auto& [fname, f] : filters)
            for (auto [w, h] : {std::pair{17, 13}, {57, 41}, {40, 11}, {17, 30}}) {
                const std::string name = std::string("resize_") + mode + "_" + fname + "_" + std::to_string(w) + "x" +
                                         std::to_string(h) + ".expected.png";
                const Image expected = onevit::decode_image(fixture(name), in->channels);
                EXPECT_EQ(onevit::resize(*in, w, h, f).pixels, expected.pixels) << name;
            }
}

// The same filter evaluated directly in 2-D, in double, with no intermediate
// rounding: PIL's separable 8-bit path may differ from it only by rounding.
Image naive_resize(const Image& in, int width, int height, Interpolation f) {
    auto kernel = [f](double x) {
        x = std::abs(x);
        if (f == Interpolation::bilinear) return x < 1 ? 1 - x : 0.0;
        if (x < 1) return 1.5 * x * x * x - 2.5 * x * x + 1;
        if (x < 2) return -0.5 * x * x * x + 2.5 * x * x - 4 * x + 2;
        return 0.0;
    };
    const double sx = double(in.width) / width, sy = double(in.height) / height;
    const double fx = std::max(sx, 1.0), fy = std::max(sy, 1.0);
    Image out = make_image(width, height, in.channels, Bytes(static_cast<std::size_t>(width) * height * in.channels));
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
            for (int c = 0; c < in.channels; ++c) {
                const double cx = (x + 0.5) * sx, cy = (y + 0.5) * sy;
                double sum = 0, norm = 0;
                for (int j = 0; j < in.height; ++j)
                    for (int i = 0; i < in.width; ++i) {
                        const double w = kernel((i + 0.5 - cx) / fx) * kernel((j + 0.5 - cy) / fy);
                        sum += w * in.pixels[(static_cast<std::size_t>(j) * in.width + i) * in.channels + c];
                        norm += w;
                    }
                out.pixels[(static_cast<std::size_t>(y) * width + x) * in.channels + c] =
                    static_cast<std::uint8_t>(std::clamp(std::lround(sum / norm), 0L, 255L));
            }
    return out;
}

TEST(Resize, SeparablePathMatchesDirect2DWithinRounding) {
    // Values kept away from 0 and 255 so bicubic overshoot never clips, which
    // the 8-bit intermediate does and the direct evaluation does not.
    for (int channels : {1, 3}) {
        const Image in = make_image(31, 23, channels, random_bytes(31 * 23 * channels, 40, 215, 10));
        for (Interpolation f : {Interpolation::bilinear, Interpolation::bicubic})
            for (auto [w, h] : {std::pair{12, 9}, {50, 40}, {31, 10}, {13, 23}, {7, 45}}) {
                const Image fast = onevit::resize(in, w, h, f);
                const Image slow = naive_resize(in, w, h, f);
                int worst = 0;
                for (std::size_t i = 0; i < fast.pixels.size(); ++i)
                    worst = std::max(worst, std::abs(fast.pixels[i] - slow.pixels[i]));
                EXPECT_LE(worst, 1) << w << "x" << h << " channels " << channels;
            }
    }
}

TEST(Resize, RegionIsThatPartOfTheFullResult) {
    const Image in = make_image(61, 47, 3, random_bytes(61 * 47 * 3, 0, 255, 11));
    for (Interpolation f : {Interpolation::nearest, Interpolation::bilinear, Interpolation::bicubic}) {
        const Image full = onevit::resize(in, 29, 83, f);
        const onevit::ResizeRegion region{5, 30, 17, 21};
        const Image part = onevit::resize(in, 29, 83, f, region);
        ASSERT_EQ(part.width, 17);
        ASSERT_EQ(part.height, 21);
        for (int y = 0; y < 21; ++y)
            for (int x = 0; x < 17 * 3; ++x)
                ASSERT_EQ(part.pixels[y * 17 * 3 + x], full.pixels[(y + 30) * 29 * 3 + 5 * 3 + x]);
    }
}

TEST(Resize, BadArgumentsThrow) {
    const Image in = make_image(4, 4, 3, Bytes(48, 0));
    EXPECT_THROW(onevit::resize(in, 0, 4, Interpolation::bilinear), onevit::Error);
    EXPECT_THROW(onevit::resize(in, 4, 4, Interpolation::bilinear, {2, 0, 3, 4}), onevit::Error);
    EXPECT_THROW(onevit::resize(make_image(4, 4, 2, Bytes(32, 0)), 2, 2, Interpolation::bilinear), onevit::Error);
    EXPECT_THROW(onevit::resize(make_image(4, 4, 3, Bytes(47, 0)), 2, 2, Interpolation::bilinear), onevit::Error);
}

// ------------------------------------------------------------ preprocess

onevit::Architecture arch(int height, int width, int channels = 3) {
    onevit::Architecture a;
    a.image_height = height;
    a.image_width = width;
    a.channels = channels;
    return a;
}

onevit::Preprocessing recipe(onevit::Resize mode, int size, Interpolation f, std::vector<float> mean,
                             std::vector<float> std) {
    onevit::Preprocessing p;
    p.resize = mode;
    p.resize_size = size;
    p.interpolation = f;
    p.mean = std::move(mean);
    p.std = std::move(std);
    return p;
}

// ToTensor + Normalize of an HWC 8-bit image, as torchvision computes it in float32.
std::vector<float> normalised(const Image& image, const onevit::Preprocessing& p) {
    const int n = image.width * image.height;
    std::vector<float> out(static_cast<std::size_t>(n) * image.channels);
    for (int c = 0; c < image.channels; ++c)
        for (int i = 0; i < n; ++i)
            out[static_cast<std::size_t>(c) * n + i] =
                (static_cast<float>(image.pixels[static_cast<std::size_t>(i) * image.channels + c]) / 255.f -
                 p.mean[c]) /
                p.std[c];
    return out;
}

const std::vector<float> kImageNetMean = {0.485f, 0.456f, 0.406f};
const std::vector<float> kImageNetStd = {0.229f, 0.224f, 0.225f};

TEST(Preprocess, ShorterSideThenCentreCropMatchesTorchvision) {
    const Image src = onevit::decode_image(fixture("src_rgb.png"));
    const auto p = recipe(onevit::Resize::shorter_then_crop, 19, Interpolation::bicubic, kImageNetMean, kImageNetStd);
    // 40x30 -> 25x19; a 16x16 crop needs offsets round(4.5) = 4 and round(1.5) = 2,
    // a 24-wide 28-high crop pads 4 rows and crops columns at round(0.5) = 0.
    for (auto [h, w] : {std::pair{16, 16}, {28, 24}}) {
        const std::string name = "crop_19_" + std::to_string(h) + "x" + std::to_string(w) + ".expected.png";
        const Image expected = onevit::decode_image(fixture(name));
        ASSERT_EQ(expected.height, h);
        ASSERT_EQ(expected.width, w);
        EXPECT_EQ(onevit::preprocess(src, arch(h, w), p), normalised(expected, p)) << name;
    }
}

TEST(Preprocess, DirectResize) {
    const Image src = onevit::decode_image(fixture("src_rgb.png"));
    const auto p = recipe(onevit::Resize::direct, 0, Interpolation::bilinear, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f});
    const Image expected = onevit::decode_image(fixture("resize_rgb_bilinear_17x13.expected.png"));
    EXPECT_EQ(onevit::preprocess(src, arch(13, 17), p), normalised(expected, p));
}

TEST(Preprocess, GreyModel) {
    const Image src = onevit::decode_image(fixture("src_rgb.png"), 1);
    const auto p = recipe(onevit::Resize::direct, 0, Interpolation::nearest, {0.25f}, {2.f});
    const Image expected = onevit::decode_image(fixture("resize_l_nearest_57x41.expected.png"), 1);
    EXPECT_EQ(onevit::preprocess(src, arch(41, 57, 1), p), normalised(expected, p));
}

TEST(Preprocess, ImageSmallerThanCropIsZeroPadded) {
    // shorter side 2 -> a 3x2 image in a 4x6 crop: zero rows/columns around it.
    const Image src = make_image(3, 2, 3, Bytes(18, 255));
    const auto p =
        recipe(onevit::Resize::shorter_then_crop, 2, Interpolation::bicubic, {0.f, 0.f, 0.f}, {1.f, 1.f, 1.f});
    const std::vector<float> out = onevit::preprocess(src, arch(4, 6), p);
    // Padding (crop - size) // 2 before: 1 column, 1 row.
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 4; ++y)
            for (int x = 0; x < 6; ++x) {
                const bool inside = y >= 1 && y < 3 && x >= 1 && x < 4;
                EXPECT_EQ(out[(c * 4 + y) * 6 + x], inside ? 1.f : 0.f) << c << " " << y << " " << x;
            }
}

TEST(Preprocess, BadInputsThrow) {
    const Image rgb = make_image(8, 8, 3, Bytes(192, 0));
    const auto p = recipe(onevit::Resize::shorter_then_crop, 8, Interpolation::bicubic, kImageNetMean, kImageNetStd);
    EXPECT_THROW(onevit::preprocess(rgb, arch(4, 4, 1), p), onevit::Error);  // channels
    auto short_mean = p;
    short_mean.mean.pop_back();
    EXPECT_THROW(onevit::preprocess(rgb, arch(4, 4), short_mean), onevit::Error);
    auto zero_std = p;
    zero_std.std[1] = 0.f;
    EXPECT_THROW(onevit::preprocess(rgb, arch(4, 4), zero_std), onevit::Error);
    auto no_size = p;
    no_size.resize_size = 0;
    EXPECT_THROW(onevit::preprocess(rgb, arch(4, 4), no_size), onevit::Error);
    EXPECT_THROW(onevit::preprocess(rgb, arch(0, 4), p), onevit::Error);
}

}  // namespace
