// The two passes of PIL's separable 8-bit resampling (Resample.c's
// ImagingResampleHorizontal_8bpc / ImagingResampleVertical_8bpc), vectorised.
// Each output value is PIL's integer sum of 8-bit pixels times 22-bit
// fixed-point weights, rounded, shifted and clipped; integer sums do not depend
// on their order, so the results are PIL's to the bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace onevit {

// Fixed-point weights: 8 bits of pixel, 2 bits of headroom for filters whose
// partial sums leave [0, 1].
constexpr int kResamplePrecisionBits = 32 - 8 - 2;

// For each output coordinate of one axis: the first input coordinate it reads,
// how many it reads and their weights (ksize slots each). `first` never
// decreases.
struct Taps {
    int ksize = 0;
    std::vector<int> first;
    std::vector<int> count;
    std::vector<std::int32_t> weights;
};

// The instruction sets the passes have kernels for: every x86-64 CPU runs
// the baseline; resample_isa() is the best this one runs, and the default.
enum class ResampleIsa { baseline, avx2 };
ResampleIsa resample_isa();

// Rows of `rows` pixels' worth of 8-bit values, `channels` (1 or 3)
// interleaved, `in_stride` bytes apart, resampled horizontally: out gets
// taps.first.size() pixels a row, rows packed. The taps read pixels
// [first, first + count) of a row.
void resample_horizontal(const std::uint8_t* in, std::size_t in_stride, int rows, int channels, const Taps& taps,
                         std::uint8_t* out, ResampleIsa isa = resample_isa());

// Rows of `row_bytes` 8-bit values, packed, the first of them source row
// `row_offset`, resampled vertically: out gets taps.first.size() rows,
// packed.
void resample_vertical(const std::uint8_t* in, std::size_t row_bytes, int row_offset, const Taps& taps,
                       std::uint8_t* out, ResampleIsa isa = resample_isa());

}  // namespace onevit
