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
Image nearest(const Image& in, const SourcePart& part, int width, int height, const ResizeRegion& r) {
    const std::vector<int> xs = nearest_sources(part.full_width, width, r.left, r.left + r.width);
    const std::vector<int> ys = nearest_sources(part.full_height, height, r.top, r.top + r.height);
    Image out;
    out.width = r.width;
    out.height = r.height;
    out.channels = in.channels;
    out.pixels.assign(static_cast<std::size_t>(r.width) * r.height * in.channels, 0);
    const int c = in.channels;
    std::uint8_t* dst = out.pixels.data();
    for (int y : ys) {
        const bool row_inside = y < part.full_height;
        for (int x : xs) {
            if (row_inside && x < part.full_width) {
                const std::uint8_t* src =
                    in.pixels.data() + (static_cast<std::size_t>(y - part.top) * in.width + x - part.left) * c;
                std::copy(src, src + c, dst);
            }
            dst += c;
        }
    }
    return out;
}

// The source rows and columns [begin, end) that one axis of a resize reads
// for outputs [out_begin, out_begin + out_count), and its taps where it resamples.
struct AxisPlan {
    bool resampled = false;
    Taps taps;
    int begin = 0;
    int end = 0;
};

AxisPlan plan_axis(int in_size, int out_size, int out_begin, int out_count, Interpolation filter) {
    AxisPlan plan;
    if (filter == Interpolation::nearest) {
        const std::vector<int> sources = nearest_sources(in_size, out_size, out_begin, out_begin + out_count);
        // Sources never decrease; those at in_size or beyond are not read.
        plan.begin = std::min(sources.front(), in_size - 1);
        plan.end = std::min(sources.back() + 1, in_size);
        return plan;
    }
    // PIL skips a pass whose axis keeps its size; such a pass would be the
    // identity anyway, skipping it is only faster.
    plan.resampled = out_size != in_size;
    if (!plan.resampled) {
        plan.begin = out_begin;
        plan.end = out_begin + out_count;
        return plan;
    }
    plan.taps = make_taps(in_size, out_size, out_begin, out_count, filter);
    // Taps move monotonically, so the first and last outputs bound the sources.
    plan.begin = plan.taps.first.front();
    plan.end = plan.taps.first.back() + plan.taps.count.back();
    return plan;
}

void check(const Image& in, const SourcePart& part, int width, int height, const ResizeRegion& r) {
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
    if (part.left < 0 || part.top < 0 || part.left > part.full_width - in.width ||
        part.top > part.full_height - in.height)
        throw Error("resize: the image part lies outside its " + std::to_string(part.full_width) + "x" +
                    std::to_string(part.full_height) + " source");
}

}  // namespace

ResizeRegion resize_source(int in_width, int in_height, int width, int height, Interpolation filter,
                           const ResizeRegion& region) {
    const AxisPlan cols = plan_axis(in_width, width, region.left, region.width, filter);
    const AxisPlan rows = plan_axis(in_height, height, region.top, region.height, filter);
    return {cols.begin, rows.begin, cols.end - cols.begin, rows.end - rows.begin};
}

Image resize(const Image& in, const SourcePart& part, int width, int height, Interpolation filter,
             const ResizeRegion& region) {
    check(in, part, width, height, region);
    AxisPlan cols = plan_axis(part.full_width, width, region.left, region.width, filter);
    const AxisPlan rows = plan_axis(part.full_height, height, region.top, region.height, filter);
    if (cols.begin < part.left || cols.end > part.left + in.width || rows.begin < part.top ||
        rows.end > part.top + in.height)
        throw Error("resize: the image part lacks source pixels the region reads");
    // PIL copies when the size is unchanged, which the nearest map reproduces.
    if (filter == Interpolation::nearest) return nearest(in, part, width, height, region);
    // `in` holds the source from (part.left, part.top) on; the rows image holds source rows from rows.begin on.
    Image resampled_rows;
    if (cols.resampled) {
        for (int& first : cols.taps.first) first -= part.left;
        resampled_rows = horizontal_pass(in, rows.begin - part.top, rows.end - part.top, cols.taps);
    } else {
        resampled_rows = crop(in, region.left - part.left, rows.begin - part.top, region.width, rows.end - rows.begin);
    }
    return rows.resampled ? vertical_pass(resampled_rows, rows.begin, rows.taps) : resampled_rows;
}

}  // namespace onevit
