// The vectorised image path against the one it replaced: the resampling
// kernels (every instruction set this CPU runs) against PIL's loops, and
// resize + preprocess against a frozen copy of the code before them, on
// random images and on every photo in ../shared/data and tests/data/images.
// Equal means equal to the bit: the float tensors are compared as bytes.

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "image/resample.hpp"
#include "image/resize.hpp"
#include "jpeg_writer.hpp"
#include "onevit/error.hpp"
#include "onevit/image.hpp"

#ifndef ONEVIT_SOURCE_DIR
#error "ONEVIT_SOURCE_DIR must name the source tree"
#endif

namespace {

using onevit::Image;
using onevit::Interpolation;
using Bytes = std::vector<std::uint8_t>;

// ---------------------------------------------------------------- frozen
// engine/image/resize.cpp and preprocess.cpp as they were before the
// vectorised passes (main at 8757ec0), minus their argument checks: the
// pipeline whose output the faster one must reproduce to the bit.
namespace frozen {

using onevit::Architecture;
using onevit::Error;
using onevit::Preprocessing;
using onevit::Resize;
using onevit::ResizeRegion;

// Fixed-point weights: 8 bits of pixel, 2 bits of headroom for filters whose
// partial sums leave [0, 1].
constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

double bicubic_filter(double x) {
    constexpr double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

std::uint8_t clip8(int value) { return static_cast<std::uint8_t>(std::clamp(value >> kPrecisionBits, 0, 255)); }

// For each output coordinate of one axis: the first input coordinate it reads,
// how many it reads and their weights (ksize slots each).
struct Taps {
    int ksize = 0;
    std::vector<int> first;
    std::vector<int> count;
    std::vector<std::int32_t> weights;
};

// Resample.c precompute_coeffs + normalize_coeffs_8bpc, for outputs
// [out_begin, out_begin + out_count) of an in_size → out_size resize.
Taps make_taps(int in_size, int out_size, int out_begin, int out_count, Interpolation filter) {
    double (*kernel)(double) = filter == Interpolation::bicubic ? bicubic_filter : bilinear_filter;
    const double kernel_support = filter == Interpolation::bicubic ? 2.0 : 1.0;

    // PIL takes the source extent from a float box.
    const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
    const double filterscale = std::max(scale, 1.0);
    const double support = kernel_support * filterscale;
    const double ss = 1.0 / filterscale;

    Taps taps;
    taps.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    taps.first.resize(out_count);
    taps.count.resize(out_count);
    taps.weights.assign(static_cast<std::size_t>(out_count) * taps.ksize, 0);
    std::vector<double> k(taps.ksize);
    for (int i = 0; i < out_count; ++i) {
        const int xx = out_begin + i;
        const double center = (xx + 0.5) * scale;
        // (int) truncates toward zero, as in C.
        const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
        const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            k[x] = kernel((x + xmin - center + 0.5) * ss);
            ww += k[x];
        }
        std::int32_t* w = &taps.weights[static_cast<std::size_t>(i) * taps.ksize];
        for (int x = 0; x < xmax; ++x) {
            const double v = ww != 0.0 ? k[x] / ww : k[x];
            w[x] = v < 0 ? static_cast<int>(-0.5 + v * (1 << kPrecisionBits))
                         : static_cast<int>(0.5 + v * (1 << kPrecisionBits));
        }
        taps.first[i] = xmin;
        taps.count[i] = xmax;
    }
    return taps;
}

// Rows [row_begin, row_end) of `in`, resampled horizontally with `taps`.
template <int C>
Image horizontal_pass(const Image& in, int row_begin, int row_end, const Taps& taps) {
    Image out;
    out.width = static_cast<int>(taps.first.size());
    out.height = row_end - row_begin;
    out.channels = C;
    out.pixels.resize(static_cast<std::size_t>(out.width) * out.height * C);
    const std::size_t in_stride = static_cast<std::size_t>(in.width) * C;
    std::uint8_t* dst = out.pixels.data();
    for (int y = row_begin; y < row_end; ++y) {
        const std::uint8_t* src_row = in.pixels.data() + in_stride * y;
        for (int xx = 0; xx < out.width; ++xx) {
            const std::int32_t* k = &taps.weights[static_cast<std::size_t>(xx) * taps.ksize];
            const std::uint8_t* src = src_row + static_cast<std::size_t>(taps.first[xx]) * C;
            int acc[C];
            for (int c = 0; c < C; ++c) acc[c] = 1 << (kPrecisionBits - 1);
            for (int x = 0; x < taps.count[xx]; ++x)
                for (int c = 0; c < C; ++c) acc[c] += src[x * C + c] * k[x];
            for (int c = 0; c < C; ++c) *dst++ = clip8(acc[c]);
        }
    }
    return out;
}

// `in` holds source rows from row_offset on; resamples them vertically.
Image vertical_pass(const Image& in, int row_offset, const Taps& taps) {
    Image out;
    out.width = in.width;
    out.height = static_cast<int>(taps.first.size());
    out.channels = in.channels;
    const std::size_t stride = static_cast<std::size_t>(in.width) * in.channels;
    out.pixels.resize(stride * out.height);
    std::vector<int> acc(stride);
    for (int yy = 0; yy < out.height; ++yy) {
        std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
        const std::int32_t* k = &taps.weights[static_cast<std::size_t>(yy) * taps.ksize];
        for (int y = 0; y < taps.count[yy]; ++y) {
            const std::uint8_t* src = in.pixels.data() + stride * (taps.first[yy] + y - row_offset);
            const int weight = k[y];
            for (std::size_t i = 0; i < stride; ++i) acc[i] += src[i] * weight;
        }
        std::uint8_t* dst = out.pixels.data() + stride * yy;
        for (std::size_t i = 0; i < stride; ++i) dst[i] = clip8(acc[i]);
    }
    return out;
}

Image crop(const Image& in, int left, int top, int width, int height) {
    Image out;
    out.width = width;
    out.height = height;
    out.channels = in.channels;
    const std::size_t row_bytes = static_cast<std::size_t>(width) * in.channels;
    out.pixels.resize(row_bytes * height);
    for (int y = 0; y < height; ++y) {
        const std::uint8_t* src =
            in.pixels.data() + (static_cast<std::size_t>(top + y) * in.width + left) * in.channels;
        std::copy(src, src + row_bytes, out.pixels.data() + row_bytes * y);
    }
    return out;
}

// Source coordinates of outputs [begin, end) of one axis, as ImagingScaleAffine
// computes them: a running double sum from the first output on, truncated.
std::vector<int> nearest_sources(int in_size, int out_size, int begin, int end) {
    const double step = static_cast<double>(static_cast<float>(in_size)) / out_size;
    double pos = step * 0.5;
    std::vector<int> sources;
    sources.reserve(end - begin);
    for (int i = 0; i < end; ++i, pos += step) {
        if (i < begin) continue;
        sources.push_back(static_cast<int>(pos));
    }
    return sources;
}

// Outputs whose source falls outside the image (rounding at the far edge)
// stay 0, as PIL's fill does.
Image nearest(const Image& in, int width, int height, const ResizeRegion& r) {
    const std::vector<int> xs = nearest_sources(in.width, width, r.left, r.left + r.width);
    const std::vector<int> ys = nearest_sources(in.height, height, r.top, r.top + r.height);
    Image out;
    out.width = r.width;
    out.height = r.height;
    out.channels = in.channels;
    out.pixels.assign(static_cast<std::size_t>(r.width) * r.height * in.channels, 0);
    const int c = in.channels;
    std::uint8_t* dst = out.pixels.data();
    for (int y : ys) {
        const bool row_inside = y < in.height;
        for (int x : xs) {
            if (row_inside && x < in.width) {
                const std::uint8_t* src = in.pixels.data() + (static_cast<std::size_t>(y) * in.width + x) * c;
                std::copy(src, src + c, dst);
            }
            dst += c;
        }
    }
    return out;
}

Image resize(const Image& in, int width, int height, Interpolation filter, const ResizeRegion& region) {
    if (filter == Interpolation::nearest) {
        // PIL copies when the size is unchanged, which the map reproduces.
        return nearest(in, width, height, region);
    }
    // PIL skips a pass whose axis keeps its size; such a pass would be the
    // identity anyway, skipping it is only faster.
    const bool horizontal = width != in.width;
    const bool vertical = height != in.height;

    Taps vertical_taps;
    int row_begin = region.top;
    int row_end = region.top + region.height;
    if (vertical) {
        vertical_taps = make_taps(in.height, height, region.top, region.height, filter);
        // Taps move monotonically, so the first and last output rows bound the source rows.
        row_begin = vertical_taps.first.front();
        row_end = vertical_taps.first.back() + vertical_taps.count.back();
    }

    Image rows;
    if (horizontal) {
        const Taps taps = make_taps(in.width, width, region.left, region.width, filter);
        rows = in.channels == 3 ? horizontal_pass<3>(in, row_begin, row_end, taps)
                                : horizontal_pass<1>(in, row_begin, row_end, taps);
    } else {
        rows = crop(in, region.left, row_begin, region.width, row_end - row_begin);
    }
    return vertical ? vertical_pass(rows, row_begin, vertical_taps) : rows;
}

// One axis of the centre crop, in resized-image coordinates.
struct Span {
    int offset;  // negative where torchvision pads
    int length;
};

// torchvision's center_crop along one axis of `size` pixels, cropping to
// `crop`: when the image is smaller it is zero-padded by (crop - size) // 2
// before; otherwise the offset is int(round((size - crop) / 2.0)) with
// Python's round-half-to-even.
Span centre_crop(int size, int crop) {
    if (crop > size) return {-((crop - size) / 2), crop};
    const int d = size - crop;
    const int half = d / 2;
    const bool round_up = d % 2 == 1 && half % 2 == 1;
    return {round_up ? half + 1 : half, crop};
}

// torchvision's _compute_resized_output_size for an int size: the shorter
// side becomes `size`, the longer int(size * long / short).
void shorter_side_size(int width, int height, int size, int& out_width, int& out_height) {
    const bool wide = width > height;
    const std::int64_t shorter = wide ? height : width;
    const std::int64_t longer = wide ? width : height;
    // Python computes size * long exactly, then one correctly rounded division.
    const double scaled = static_cast<double>(size * longer) / static_cast<double>(shorter);
    if (scaled > INT_MAX)
        throw Error("preprocess: resizing the shorter side to " + std::to_string(size) +
                    " makes the longer side too large");
    const int new_long = static_cast<int>(scaled);
    out_width = wide ? new_long : size;
    out_height = wide ? size : new_long;
}

std::vector<float> preprocess(const Image& image, const Architecture& arch, const Preprocessing& recipe) {
    const int out_h = arch.image_height;
    const int out_w = arch.image_width;

    int resized_w = out_w;
    int resized_h = out_h;
    if (recipe.resize == Resize::shorter_then_crop)
        shorter_side_size(image.width, image.height, recipe.resize_size, resized_w, resized_h);
    if (recipe.resize == Resize::squash_then_crop) resized_w = resized_h = recipe.resize_size;
    const Span cols = centre_crop(resized_w, out_w);
    const Span rows = centre_crop(resized_h, out_h);

    // Only the part of the resized image that survives the crop is computed.
    ResizeRegion kept;
    kept.left = std::max(cols.offset, 0);
    kept.top = std::max(rows.offset, 0);
    kept.width = std::min(resized_w, cols.offset + cols.length) - kept.left;
    kept.height = std::min(resized_h, rows.offset + rows.length) - kept.top;
    const Image resized = frozen::resize(image, resized_w, resized_h, recipe.interpolation, kept);
    // Where the crop is larger than the image, the output starts this far in.
    const int pad_left = kept.left - cols.offset;
    const int pad_top = kept.top - rows.offset;

    const int channels = arch.channels;
    std::vector<float> out(static_cast<std::size_t>(channels) * out_h * out_w);
    for (int c = 0; c < channels; ++c) {
        // ToTensor divides by 255, Normalize subtracts and divides, all in float32.
        float lut[256];
        for (int v = 0; v < 256; ++v) lut[v] = (static_cast<float>(v) / 255.f - recipe.mean[c]) / recipe.std[c];
        float* plane = out.data() + static_cast<std::size_t>(c) * out_h * out_w;
        std::fill(plane, plane + static_cast<std::size_t>(out_h) * out_w, lut[0]);
        for (int y = 0; y < resized.height; ++y) {
            const std::uint8_t* src = resized.pixels.data() + static_cast<std::size_t>(y) * resized.width * channels;
            float* dst = plane + static_cast<std::size_t>(y + pad_top) * out_w + pad_left;
            for (int x = 0; x < resized.width; ++x) dst[x] = lut[src[x * channels + c]];
        }
    }
    return out;
}

}  // namespace frozen

// ---------------------------------------------------------------- kernels

std::vector<onevit::ResampleIsa> isas() {
    std::vector<onevit::ResampleIsa> all = {onevit::ResampleIsa::baseline};
    if (onevit::resample_isa() == onevit::ResampleIsa::avx2) all.push_back(onevit::ResampleIsa::avx2);
    return all;
}

const char* isa_name(onevit::ResampleIsa isa) { return isa == onevit::ResampleIsa::avx2 ? "avx2" : "baseline"; }

Image random_image(int width, int height, int channels, std::mt19937& rng) {
    Image image;
    image.width = width;
    image.height = height;
    image.channels = channels;
    image.pixels.resize(static_cast<std::size_t>(width) * height * channels);
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& p : image.pixels) p = static_cast<std::uint8_t>(byte(rng));
    return image;
}

// Taps of `out` outputs over `in` inputs, ksize slots, with weights whose sums
// reach beyond both ends of [0, 255] (both clips) but whose partial sums stay
// within 32 bits, as PIL's normalised weights do.
frozen::Taps random_taps(int in, int out, int ksize, std::mt19937& rng) {
    frozen::Taps taps;
    taps.ksize = ksize;
    std::uniform_int_distribution<int> start(0, in - 1);
    for (int i = 0; i < out; ++i) taps.first.push_back(start(rng));
    std::sort(taps.first.begin(), taps.first.end());  // first never decreases
    for (int i = 0; i < out; ++i) {
        const int count = std::uniform_int_distribution<int>(1, std::min(ksize, in - taps.first[i]))(rng);
        taps.count.push_back(count);
        const int most = ((1 << 23) - (1 << 21)) / count;
        std::uniform_int_distribution<int> weight(-most / 2, most);
        for (int x = 0; x < ksize; ++x) taps.weights.push_back(x < count ? weight(rng) : 0);
    }
    return taps;
}

onevit::Taps engine_taps(const frozen::Taps& t) { return {t.ksize, t.first, t.count, t.weights}; }

TEST(ResampleKernels, HorizontalIsPilsLoop) {
    std::mt19937 rng(7);
    for (onevit::ResampleIsa isa : isas())
        for (int channels : {1, 3})
            for (int width : {1, 2, 5, 6, 15, 17, 40, 123})
                for (int rows : {1, 5, 16, 17, 33})
                    for (int out : {1, 3, 16, 29})
                        for (int ksize : {1, 3, 8, 23}) {
                            const Image in = random_image(width, rows + 2, channels, rng);
                            const frozen::Taps taps = random_taps(width, out, ksize, rng);
                            const Image want = channels == 3 ? frozen::horizontal_pass<3>(in, 1, rows + 1, taps)
                                                             : frozen::horizontal_pass<1>(in, 1, rows + 1, taps);
                            Bytes got(want.pixels.size(), 0xAB);
                            const std::size_t stride = static_cast<std::size_t>(width) * channels;
                            onevit::resample_horizontal(in.pixels.data() + stride, stride, rows, channels,
                                                        engine_taps(taps), got.data(), isa);
                            ASSERT_EQ(got, want.pixels)
                                << isa_name(isa) << " channels " << channels << " width " << width << " rows " << rows
                                << " out " << out << " ksize " << ksize;
                        }
}

TEST(ResampleKernels, VerticalIsPilsLoop) {
    std::mt19937 rng(8);
    for (onevit::ResampleIsa isa : isas())
        for (int row_bytes : {1, 3, 31, 32, 33, 64, 100, 672})
            for (int rows : {1, 4, 19})
                for (int out : {1, 7, 20})
                    for (int ksize : {1, 5, 12}) {
                        const Image in = random_image(row_bytes, rows, 1, rng);
                        // `in` holds source rows 3 .. rows + 2.
                        frozen::Taps taps = random_taps(rows, out, ksize, rng);
                        for (int& first : taps.first) first += 3;
                        const Image want = frozen::vertical_pass(in, 3, taps);
                        Bytes got(want.pixels.size(), 0xAB);
                        onevit::resample_vertical(in.pixels.data(), row_bytes, 3, engine_taps(taps), got.data(), isa);
                        ASSERT_EQ(got, want.pixels) << isa_name(isa) << " row bytes " << row_bytes << " rows " << rows
                                                    << " out " << out << " ksize " << ksize;
                    }
}

// ---------------------------------------------------------------- resize and preprocess

TEST(ResizeExact, RandomImagesAsBefore) {
    std::mt19937 rng(9);
    for (int channels : {1, 3})
        for (Interpolation f : {Interpolation::nearest, Interpolation::bilinear, Interpolation::bicubic})
            for (int trial = 0; trial < 60; ++trial) {
                std::uniform_int_distribution<int> side(1, 90);
                const Image in = random_image(side(rng), side(rng), channels, rng);
                const int w = side(rng), h = trial % 5 == 0 ? in.height : side(rng);  // some keep an axis
                onevit::ResizeRegion r;
                r.left = std::uniform_int_distribution<int>(0, w - 1)(rng);
                r.top = std::uniform_int_distribution<int>(0, h - 1)(rng);
                r.width = std::uniform_int_distribution<int>(1, w - r.left)(rng);
                r.height = std::uniform_int_distribution<int>(1, h - r.top)(rng);
                const Image want = frozen::resize(in, w, h, f, r);
                const Image got = onevit::resize(in, w, h, f, r);
                ASSERT_EQ(got.width, want.width);
                ASSERT_EQ(got.height, want.height);
                ASSERT_EQ(got.pixels, want.pixels) << in.width << "x" << in.height << " -> " << w << "x" << h
                                                   << " channels " << channels << " filter " << int(f);
            }
}

onevit::Preprocessing recipe(onevit::Resize mode, int size, Interpolation f, int channels) {
    onevit::Preprocessing p;
    p.resize = mode;
    p.resize_size = size;
    p.interpolation = f;
    p.mean.assign({0.485f, 0.456f, 0.406f});
    p.std.assign({0.229f, 0.224f, 0.225f});
    p.mean.resize(channels);
    p.std.resize(channels);
    return p;
}

// preprocess against the frozen pipeline, bytes for bytes, for the recipes
// the model zoo uses (and a few that pad or upscale).
// With `bytes` (the file `image` was decoded from, to image.channels): also
// preprocess_image_bytes, which decodes a JPEG in part.
void expect_preprocess_as_before(const Image& image, const std::string& name, const Bytes* bytes = nullptr) {
    struct Case {
        onevit::Resize mode;
        int size;
        Interpolation filter;
        int height, width;
    };
    const Case cases[] = {
        {onevit::Resize::shorter_then_crop, 256, Interpolation::bicubic, 224, 224},
        {onevit::Resize::shorter_then_crop, 248, Interpolation::bicubic, 224, 224},
        {onevit::Resize::shorter_then_crop, 232, Interpolation::bilinear, 224, 224},
        {onevit::Resize::direct, 0, Interpolation::bilinear, 224, 224},
        {onevit::Resize::squash_then_crop, 235, Interpolation::bicubic, 224, 224},
        {onevit::Resize::shorter_then_crop, 384, Interpolation::bicubic, 384, 384},
        {onevit::Resize::shorter_then_crop, 96, Interpolation::nearest, 112, 128},
    };
    for (const Case& c : cases) {
        onevit::Architecture arch;
        arch.channels = image.channels;
        arch.image_height = c.height;
        arch.image_width = c.width;
        const onevit::Preprocessing p = recipe(c.mode, c.size, c.filter, image.channels);
        const std::vector<float> want = frozen::preprocess(image, arch, p);
        const std::vector<float> got = onevit::preprocess(image, arch, p);
        ASSERT_EQ(got.size(), want.size());
        const std::string what = name + ": " + onevit::to_string(c.mode) + " " + std::to_string(c.size) + " " +
                                 onevit::to_string(c.filter) + " " + std::to_string(c.height) + "x" +
                                 std::to_string(c.width) + " channels " + std::to_string(image.channels);
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << what;
        if (!bytes) continue;
        const std::vector<float> from_bytes = onevit::preprocess_image_bytes(bytes->data(), bytes->size(), arch, p);
        ASSERT_EQ(from_bytes.size(), want.size());
        EXPECT_EQ(std::memcmp(from_bytes.data(), want.data(), want.size() * sizeof(float)), 0)
            << what << " (preprocess_image_bytes)";
        std::vector<float> into(want.size(), std::numeric_limits<float>::quiet_NaN());  // each value must be written
        onevit::preprocess_image_bytes_into(bytes->data(), bytes->size(), arch, p, into.data());
        EXPECT_EQ(std::memcmp(into.data(), want.data(), want.size() * sizeof(float)), 0)
            << what << " (preprocess_image_bytes_into)";
    }
}

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> image_files(const std::filesystem::path& root) {
    std::vector<std::string> files;
    if (!std::filesystem::is_directory(root)) return files;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root))
        if (entry.is_regular_file() && onevit::has_image_extension(entry.path().string()))
            files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    return files;
}

TEST(PreprocessExact, RandomImagesAsBefore) {
    std::mt19937 rng(10);
    for (int channels : {1, 3})
        for (auto [w, h] : {std::pair{1, 1}, {3, 500}, {500, 333}, {333, 500}, {640, 480}, {100, 75}, {224, 224}})
            expect_preprocess_as_before(random_image(w, h, channels, rng), std::to_string(w) + "x" + std::to_string(h));
}

// The test fixtures: PNG, JPEG, WebP, BMP and TIFF, grey and colour.
TEST(PreprocessExact, FixturesAsBefore) {
    const auto files = image_files(std::filesystem::path(ONEVIT_SOURCE_DIR) / "tests" / "data" / "images");
    ASSERT_FALSE(files.empty());
    int decoded = 0;
    for (const std::string& file : files)
        for (int channels : {1, 3}) {
            const Bytes bytes = read_bytes(file);
            Image image;
            try {
                image = onevit::decode_image_bytes(bytes.data(), bytes.size(), channels);
            } catch (const onevit::Error&) {
                continue;  // the broken files the decoding tests refuse
            }
            ++decoded;
            expect_preprocess_as_before(image, file, &bytes);
        }
    EXPECT_GT(decoded, 20);
}

// The real photos: $ONEVIT_DATA, else ../shared/data beside the checkout.
TEST(PreprocessExact, SharedPhotosAsBefore) {
    const char* env = std::getenv("ONEVIT_DATA");
    const std::filesystem::path root =
        env ? std::filesystem::path(env) : std::filesystem::path(ONEVIT_SOURCE_DIR) / ".." / "shared" / "data";
    const auto files = image_files(root);
    if (files.empty()) GTEST_SKIP() << "no photos under " << root;
    for (const std::string& file : files) {
        const Bytes bytes = read_bytes(file);
        expect_preprocess_as_before(onevit::decode_image_bytes(bytes.data(), bytes.size(), 3), file, &bytes);
    }
}

// A photo-like image: smooth gradients and waves, so that chroma varies
// between neighbouring blocks (where cropped upsampling would show).
Image wavy_image(int width, int height, int channels, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> phase(0, 6.28);
    double ph[3] = {phase(rng), phase(rng), phase(rng)};
    Image image;
    image.width = width;
    image.height = height;
    image.channels = channels;
    image.pixels.resize(static_cast<std::size_t>(width) * height * channels);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
            for (int c = 0; c < channels; ++c)
                image.pixels[(static_cast<std::size_t>(y) * width + x) * channels + c] = static_cast<std::uint8_t>(
                    128 + 120 * std::sin(x * (0.05 + 0.11 * c) + y * (0.07 + 0.05 * c) + ph[c]));
    return image;
}

// JPEGs of every sampling libjpeg writes, baseline and progressive, grey and
// colour, of sizes that are and are not whole blocks, from smaller than the
// crop to several times larger: preprocess_image_bytes (in part) gives
// exactly what the frozen pipeline makes of the whole decoded image.
TEST(PreprocessExact, JpegDecodedInPartAsBefore) {
    const std::pair<int, int> samplings[] = {{1, 1}, {2, 1}, {1, 2}, {2, 2}};
    const std::pair<int, int> sizes[] = {{500, 375}, {375, 500}, {97, 61}, {640, 427}, {1024, 200}, {33, 300}};
    unsigned seed = 1;
    for (const auto& [w, h] : sizes)
        for (const auto& [hs, vs] : samplings)
            for (bool progressive : {false, true})
                for (int channels : {3, 1}) {
                    if (channels == 1 && (hs != 1 || vs != 1)) continue;  // grey has no sampling
                    const Bytes jpeg =
                        onevit::test_support::write_jpeg(wavy_image(w, h, channels, seed++), progressive, hs, vs);
                    for (int decode_channels : {3, 1}) {
                        const Image image = onevit::decode_image_bytes(jpeg.data(), jpeg.size(), decode_channels);
                        expect_preprocess_as_before(image,
                                                    std::to_string(w) + "x" + std::to_string(h) + " sampling " +
                                                        std::to_string(hs) + "x" + std::to_string(vs) +
                                                        (progressive ? " progressive" : ""),
                                                    &jpeg);
                    }
                }
}

// The rows and columns the part leaves out are still entropy-decoded: a JPEG
// corrupt or cut there fails with the message decode_image_bytes gives.
TEST(PreprocessExact, JpegBrokenOutsideThePartStillFails) {
    onevit::Architecture arch;
    arch.channels = 3;
    arch.image_height = arch.image_width = 32;
    const onevit::Preprocessing p = recipe(onevit::Resize::shorter_then_crop, 40, Interpolation::bicubic, 3);
    const Bytes jpeg = onevit::test_support::write_jpeg(wavy_image(400, 300, 3, 5), false);
    auto error_of = [&](const Bytes& bytes, bool in_part) -> std::string {
        try {
            if (in_part)
                onevit::preprocess_image_bytes(bytes.data(), bytes.size(), arch, p);
            else
                onevit::preprocess(onevit::decode_image_bytes(bytes.data(), bytes.size(), 3), arch, p);
        } catch (const onevit::Error& e) {
            return e.what();
        }
        return "";
    };
    ASSERT_EQ(error_of(jpeg, true), "");
    // Early (the rows skipped above the part) and late (those below it) in the entropy-coded data.
    for (double where : {0.05, 0.3, 0.8, 0.9, 0.97}) {
        Bytes corrupt = jpeg;
        const std::size_t at = static_cast<std::size_t>(corrupt.size() * where);
        corrupt[at] = 0xFF;
        corrupt[at + 1] = 0xD0;  // RST0 where none belongs
        const std::string whole = error_of(corrupt, false);
        EXPECT_NE(whole, "") << where;
        EXPECT_EQ(error_of(corrupt, true), whole) << where;
    }
    for (std::size_t cut : {jpeg.size() - 2, jpeg.size() * 9 / 10, jpeg.size() / 10}) {
        const Bytes truncated(jpeg.begin(), jpeg.begin() + static_cast<std::ptrdiff_t>(cut));
        const std::string whole = error_of(truncated, false);
        EXPECT_NE(whole, "") << cut;
        EXPECT_EQ(error_of(truncated, true), whole) << cut;
    }
}

TEST(ResizeExact, PartOfTheSourceAsWhole) {
    std::mt19937 rng(11);
    for (Interpolation f : {Interpolation::nearest, Interpolation::bilinear, Interpolation::bicubic})
        for (int trial = 0; trial < 40; ++trial) {
            std::uniform_int_distribution<int> side(1, 80);
            const Image in = random_image(side(rng), side(rng), 3, rng);
            const int w = side(rng), h = side(rng);
            const onevit::ResizeRegion r{w / 4, h / 3, w - w / 4 - w / 5, h - h / 3};
            const onevit::ResizeRegion src = onevit::resize_source(in.width, in.height, w, h, f, r);
            // A part a little larger than the source rectangle, where the image allows.
            const int left = std::max(0, src.left - trial % 3), top = std::max(0, src.top - trial % 2);
            const int right = std::min(in.width, src.left + src.width + trial % 4);
            const int bottom = std::min(in.height, src.top + src.height + 1);
            Image part;
            part.width = right - left;
            part.height = bottom - top;
            part.channels = 3;
            for (int y = top; y < bottom; ++y)
                part.pixels.insert(part.pixels.end(), in.pixels.begin() + (y * in.width + left) * 3,
                                   in.pixels.begin() + (y * in.width + right) * 3);
            const onevit::SourcePart where{left, top, in.width, in.height};
            ASSERT_EQ(onevit::resize(part, where, w, h, f, r).pixels, onevit::resize(in, w, h, f, r).pixels)
                << in.width << "x" << in.height << " -> " << w << "x" << h << " filter " << int(f);
            if (src.width > 1 && left == src.left) {  // one source column short: refused
                Image short_part = part;
                const onevit::SourcePart shifted{left + 1, top, in.width, in.height};
                short_part.width -= 1;
                short_part.pixels.clear();
                for (int y = top; y < bottom; ++y)
                    short_part.pixels.insert(short_part.pixels.end(), in.pixels.begin() + (y * in.width + left + 1) * 3,
                                             in.pixels.begin() + (y * in.width + right) * 3);
                EXPECT_THROW(onevit::resize(short_part, shifted, w, h, f, r), onevit::Error);
            }
        }
}

}  // namespace
