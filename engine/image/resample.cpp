// Each output value's sum runs in its own vector lane: the vertical pass sums
// whole rows, its lanes along the row; the horizontal pass takes 16 rows at a
// time, transposed (16 × 16 byte blocks), so that its lanes are the 16 rows
// and every tap is one contiguous load. The AVX2 kernels are picked at run
// time by the CPU (intrinsics: GCC 12 widens bytes to 32-bit lanes one byte at
// a time when left to vectorise these loops itself); the baseline ones are the
// same sums in plain loops.

#include "image/resample.hpp"

#include <immintrin.h>

#include <algorithm>

namespace onevit {
namespace {

constexpr int kBand = 16;  // rows per horizontal band: a lane each, and a 16 × 16 byte transpose

inline std::uint8_t clip8(int value) {
    return static_cast<std::uint8_t>(std::clamp(value >> kResamplePrecisionBits, 0, 255));
}

// 16 rows of 16 bytes to 16 columns: rows[r] byte j goes to cols[j] byte r.
// Four rounds of interleaving rows r and r + 8 (SSE2, every x86-64 has it).
void transpose16(__m128i x[kBand]) {
    for (int round = 0; round < 4; ++round) {
        __m128i y[kBand];
        for (int i = 0; i < kBand / 2; ++i) {
            y[2 * i] = _mm_unpacklo_epi8(x[i], x[i + kBand / 2]);
            y[2 * i + 1] = _mm_unpackhi_epi8(x[i], x[i + kBand / 2]);
        }
        std::copy(y, y + kBand, x);
    }
}

// band[j * 16 + r] = rows[r][j] for j < n.
void gather_band(const std::uint8_t* const rows[kBand], int n, std::uint8_t* band) {
    int j = 0;
    for (; j + kBand <= n; j += kBand) {
        __m128i x[kBand];
        for (int r = 0; r < kBand; ++r) x[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[r] + j));
        transpose16(x);
        for (int i = 0; i < kBand; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(band + (j + i) * kBand), x[i]);
    }
    for (; j < n; ++j)
        for (int r = 0; r < kBand; ++r) band[j * kBand + r] = rows[r][j];
}

// The inverse for the first `rows` rows: out[r * stride + j] = band[j * 16 + r], j < n.
void scatter_band(const std::uint8_t* band, int n, int rows, std::uint8_t* out, std::size_t stride) {
    int j = 0;
    for (; j + kBand <= n; j += kBand) {
        __m128i x[kBand];
        for (int i = 0; i < kBand; ++i)
            x[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(band + (j + i) * kBand));
        transpose16(x);
        for (int r = 0; r < rows; ++r) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + r * stride + j), x[r]);
    }
    for (; j < n; ++j)
        for (int r = 0; r < rows; ++r) out[r * stride + j] = band[j * kBand + r];
}

// ---- the baseline kernels: PIL's loops as written

// One band: band holds source values j0 + j (value = pixel * C + channel) of
// 16 rows, transposed; result[(xx * C + c) * 16 + r] gets output pixel xx's
// channel c of row r.
template <int C>
void convolve_band(const std::uint8_t* band, int j0, const Taps& taps, std::uint8_t* result) {
    const int out_width = static_cast<int>(taps.first.size());
    for (int xx = 0; xx < out_width; ++xx) {
        const std::int32_t* k = &taps.weights[static_cast<std::size_t>(xx) * taps.ksize];
        const std::uint8_t* src = band + static_cast<std::size_t>(taps.first[xx] * C - j0) * kBand;
        std::int32_t acc[C * kBand];
        std::fill(acc, acc + C * kBand, 1 << (kResamplePrecisionBits - 1));
        for (int x = 0; x < taps.count[xx]; ++x, src += C * kBand)
            for (int i = 0; i < C * kBand; ++i) acc[i] += src[i] * k[x];
        for (int i = 0; i < C * kBand; ++i) result[xx * C * kBand + i] = clip8(acc[i]);
    }
}

// One output row: the sum over the taps of `count` input rows.
void vertical_row(const std::uint8_t* in, std::size_t row_bytes, const std::int32_t* k, int count, std::uint8_t* out,
                  std::size_t begin = 0) {
    for (std::size_t i = begin; i < row_bytes; ++i) {
        std::int32_t acc = 1 << (kResamplePrecisionBits - 1);
        for (int y = 0; y < count; ++y) acc += in[row_bytes * y + i] * k[y];
        out[i] = clip8(acc);
    }
}

// ---- AVX2: 8 sums a register, 32-bit products (vpmulld), as exact as the baseline

#define ONEVIT_AVX2 __attribute__((target("avx2")))

// 8 bytes from p, zero-extended to 8 lanes.
ONEVIT_AVX2 inline __m256i widen8(const std::uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

ONEVIT_AVX2 inline __m256i multiply_add(__m256i acc, const std::uint8_t* p, __m256i weight) {
    return _mm256_add_epi32(acc, _mm256_mullo_epi32(widen8(p), weight));
}

// clip8 of 32 sums (a[0] the first 8) into 32 bytes: the shift, then the two
// saturating packs clamp to [0, 255]; the permute undoes their lane order.
ONEVIT_AVX2 inline __m256i clip32(const __m256i a[4]) {
    const __m256i lo = _mm256_packs_epi32(_mm256_srai_epi32(a[0], kResamplePrecisionBits),
                                          _mm256_srai_epi32(a[1], kResamplePrecisionBits));
    const __m256i hi = _mm256_packs_epi32(_mm256_srai_epi32(a[2], kResamplePrecisionBits),
                                          _mm256_srai_epi32(a[3], kResamplePrecisionBits));
    return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(lo, hi), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

template <int C>
ONEVIT_AVX2 void convolve_band_avx2(const std::uint8_t* band, int j0, const Taps& taps, std::uint8_t* result) {
    const int out_width = static_cast<int>(taps.first.size());
    const __m256i bias = _mm256_set1_epi32(1 << (kResamplePrecisionBits - 1));
    for (int xx = 0; xx < out_width; ++xx) {
        const std::int32_t* k = &taps.weights[static_cast<std::size_t>(xx) * taps.ksize];
        const std::uint8_t* src = band + static_cast<std::size_t>(taps.first[xx] * C - j0) * kBand;
        __m256i acc[2 * C];
        for (int i = 0; i < 2 * C; ++i) acc[i] = bias;
        for (int x = 0; x < taps.count[xx]; ++x, src += C * kBand) {
            const __m256i w = _mm256_set1_epi32(k[x]);
            for (int i = 0; i < 2 * C; ++i) acc[i] = multiply_add(acc[i], src + 8 * i, w);
        }
        // Two values of 16 rows at a time, the last one of an odd count with itself.
        for (int c = 0; c < C; c += 2) {
            const int next = c + 1 < C ? c + 1 : c;
            const __m256i four[4] = {acc[2 * c], acc[2 * c + 1], acc[2 * next], acc[2 * next + 1]};
            const __m256i bytes = clip32(four);
            std::uint8_t* dst = result + (xx * C + c) * kBand;
            if (next != c)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), bytes);
            else
                _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_castsi256_si128(bytes));
        }
    }
}

ONEVIT_AVX2 void vertical_row_avx2(const std::uint8_t* in, std::size_t row_bytes, const std::int32_t* k, int count,
                                   std::uint8_t* out) {
    constexpr std::size_t kChunk = 32;
    const __m256i bias = _mm256_set1_epi32(1 << (kResamplePrecisionBits - 1));
    std::size_t i = 0;
    for (; i + kChunk <= row_bytes; i += kChunk) {
        __m256i acc[4] = {bias, bias, bias, bias};
        for (int y = 0; y < count; ++y) {
            const std::uint8_t* src = in + row_bytes * y + i;
            const __m256i w = _mm256_set1_epi32(k[y]);
            for (int q = 0; q < 4; ++q) acc[q] = multiply_add(acc[q], src + 8 * q, w);
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), clip32(acc));
    }
    vertical_row(in, row_bytes, k, count, out, i);
}

}  // namespace

ResampleIsa resample_isa() {
    static const ResampleIsa best = __builtin_cpu_supports("avx2") ? ResampleIsa::avx2 : ResampleIsa::baseline;
    return best;
}

void resample_horizontal(const std::uint8_t* in, std::size_t in_stride, int rows, int channels, const Taps& taps,
                         std::uint8_t* out, ResampleIsa isa) {
    const int out_width = static_cast<int>(taps.first.size());
    if (rows <= 0 || out_width == 0) return;
    auto convolve = channels == 3 ? (isa == ResampleIsa::avx2 ? convolve_band_avx2<3> : convolve_band<3>)
                                  : (isa == ResampleIsa::avx2 ? convolve_band_avx2<1> : convolve_band<1>);
    // The source values the taps read, in every row.
    const int j0 = taps.first.front() * channels;
    int j1 = j0;
    for (int xx = 0; xx < out_width; ++xx) j1 = std::max(j1, (taps.first[xx] + taps.count[xx]) * channels);
    const int out_bytes = out_width * channels;
    std::vector<std::uint8_t> band(static_cast<std::size_t>(j1 - j0) * kBand);
    std::vector<std::uint8_t> result(static_cast<std::size_t>(out_bytes) * kBand);
    for (int r0 = 0; r0 < rows; r0 += kBand) {
        // A last band of fewer rows repeats its last row; those lanes are not stored.
        const std::uint8_t* band_rows[kBand];
        for (int r = 0; r < kBand; ++r) band_rows[r] = in + in_stride * std::min(r0 + r, rows - 1) + j0;
        gather_band(band_rows, j1 - j0, band.data());
        convolve(band.data(), j0, taps, result.data());
        scatter_band(result.data(), out_bytes, std::min(kBand, rows - r0),
                     out + static_cast<std::size_t>(r0) * out_bytes, out_bytes);
    }
}

void resample_vertical(const std::uint8_t* in, std::size_t row_bytes, int row_offset, const Taps& taps,
                       std::uint8_t* out, ResampleIsa isa) {
    const int out_height = static_cast<int>(taps.first.size());
    for (int yy = 0; yy < out_height; ++yy) {
        const std::uint8_t* src = in + row_bytes * (taps.first[yy] - row_offset);
        const std::int32_t* k = &taps.weights[static_cast<std::size_t>(yy) * taps.ksize];
        std::uint8_t* dst = out + row_bytes * yy;
        if (isa == ResampleIsa::avx2)
            vertical_row_avx2(src, row_bytes, k, taps.count[yy], dst);
        else
            vertical_row(src, row_bytes, k, taps.count[yy], dst);
    }
}

}  // namespace onevit
