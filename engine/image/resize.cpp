// PIL's resampling (libImaging/Resample.c and the nearest-neighbour scaling of
// Geometry.c), restated with the same floating-point operations in the same
// order so that the 8-bit results are identical.

#include "image/resize.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "image/resample.hpp"
#include "onevit/error.hpp"

namespace onevit {
namespace {

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
            w[x] = v < 0 ? static_cast<int>(-0.5 + v * (1 << kResamplePrecisionBits))
                         : static_cast<int>(0.5 + v * (1 << kResamplePrecisionBits));
        }
        taps.first[i] = xmin;
        taps.count[i] = xmax;
    }
    return taps;
}

// Rows [row_begin, row_end) of `in`, resampled horizontally with `taps`.
Image horizontal_pass(const Image& in, int row_begin, int row_end, const Taps& taps) {
    Image out;
    out.width = static_cast<int>(taps.first.size());
    out.height = row_end - row_begin;
    out.channels = in.channels;
    out.pixels.resize(static_cast<std::size_t>(out.width) * out.height * in.channels);
    const std::size_t in_stride = static_cast<std::size_t>(in.width) * in.channels;
    resample_horizontal(in.pixels.data() + in_stride * row_begin, in_stride, out.height, in.channels, taps,
                        out.pixels.data());
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
    resample_vertical(in.pixels.data(), stride, row_offset, taps, out.pixels.data());
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

void check(const Image& in, int width, int height, const ResizeRegion& r) {
    if (in.channels != 1 && in.channels != 3)
        throw Error("resize: image has " + std::to_string(in.channels) + " channels (1 or 3 supported)");
    if (in.width <= 0 || in.height <= 0 ||
        in.pixels.size() != static_cast<std::size_t>(in.width) * in.height * in.channels)
        throw Error("resize: image size and pixel buffer disagree");
    if (width <= 0 || height <= 0)
        throw Error("resize: target size " + std::to_string(width) + "x" + std::to_string(height) + " is not positive");
    if (r.width <= 0 || r.height <= 0 || r.left < 0 || r.top < 0 || r.left > width - r.width ||
        r.top > height - r.height)
        throw Error("resize: region is empty or outside the " + std::to_string(width) + "x" + std::to_string(height) +
                    " result");
}

}  // namespace

Image resize(const Image& in, int width, int height, Interpolation filter, const ResizeRegion& region) {
    check(in, width, height, region);
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
        rows = horizontal_pass(in, row_begin, row_end, taps);
    } else {
        rows = crop(in, region.left, row_begin, region.width, row_end - row_begin);
    }
    return vertical ? vertical_pass(rows, row_begin, vertical_taps) : rows;
}

}  // namespace onevit
