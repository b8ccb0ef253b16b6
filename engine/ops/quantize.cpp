#include "ops/quantize.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "ops/prefetch_rows.hpp"
#include "ops/s8_store.hpp"
#include "ops/vector_math.hpp"

namespace onevit {

namespace {

float scale_for_max_abs(float max_abs) { return max_abs > 0.f ? max_abs / 127.f : 1.f; }
float symmetric_scale(const float* values, int n) { return scale_for_max_abs(max_abs_of(values, n)); }

// std::min(127, x) is 127 for a NaN x (a hostile model's), so no NaN reaches
// the float → int8 conversion (undefined behaviour out of range).
inline std::int8_t quantized(float value, float inverse_scale) {
    return static_cast<std::int8_t>(std::max(-127.f, std::min(127.f, round_even(value * inverse_scale))));
}

ONEVIT_VECTOR_CLONES
void quantize(const float* values, int n, float scale, std::int8_t* q) {
    const float inverse = 1.f / scale;
    for (int i = 0; i < n; ++i) q[i] = quantized(values[i], inverse);
}

inline float from_bf16(std::uint16_t value) {
    const std::uint32_t bits = std::uint32_t(value) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

ONEVIT_VECTOR_CLONES
void to_bf16_row(const float* values, int n, float scale, std::uint16_t* out) {
    for (int i = 0; i < n; ++i) {
        const float value = values[i] * scale;
        std::uint32_t bits;
        std::memcpy(&bits, &value, sizeof bits);
        const std::uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
        const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
        out[i] = static_cast<std::uint16_t>(nan ? (bits >> 16) | 0x40u : rounded);
    }
}

ONEVIT_VECTOR_CLONES
void from_bf16_row(const std::uint16_t* in, int n, float* values) {
    for (int i = 0; i < n; ++i) values[i] = from_bf16(in[i]);
}

ONEVIT_VECTOR_CLONES
void scale_into(const float* values, int n, float scale, float* out) {
    for (int i = 0; i < n; ++i) out[i] = values[i] * scale;
}

}  // namespace

ONEVIT_VECTOR_CLONES
float sum_of(const float* values, int n) {
    return lane_sum(n, [&](int i) { return values[i]; });
}

ONEVIT_VECTOR_CLONES
float sum_of_squares(const float* values, int n) {
    return lane_sum(n, [&](int i) { return values[i] * values[i]; });
}

// On the bits: for floats that are not NaN, |x| orders as its bits with the
// sign cleared, read as an integer — and an integer maximum vectorises, where
// a float one (std::max's NaN order) does not. A NaN stays NaN.
ONEVIT_VECTOR_CLONES
float max_abs_of(const float* values, int n) {
    std::uint32_t max_bits = 0;
    for (int i = 0; i < n; ++i) {
        std::uint32_t bits;
        std::memcpy(&bits, &values[i], sizeof bits);
        max_bits = std::max(max_bits, bits & 0x7fffffffu);
    }
    float max_abs;
    std::memcpy(&max_abs, &max_bits, sizeof max_abs);
    return max_abs;
}

namespace {

// |x| orders as the bits with the sign cleared, as in max_abs_of. All the
// maxima first: each row's scale is two dependent divisions, which then
// overlap from row to row.

// GCC 12 warns of the "undefined" vectors inside its own intrinsics (bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// quantize_bf16_rows by AVX-512 for rows of a multiple of 32 values (attention's
// q, k and v at int8): the arithmetic of GCC's AVX-512 build of the loops below
// (x · 1/scale + the rounding constant fused, the clamp's NaN to 127), without
// its shuffles to and from 16-bit lanes (docs/performance.md, "Attention").
__attribute__((target("avx512f,avx512bw"))) void quantize_bf16_rows_avx512(const std::uint16_t* values,
                                                                           std::int64_t stride, int rows, int n,
                                                                           std::int8_t* q, float* scales) {
    const __m512i magnitude = _mm512_set1_epi16(0x7fff), low_half = _mm512_set1_epi32(0xffff);
    for (int r = 0; r < rows; ++r) {
        const std::uint16_t* row = values + r * stride;
        prefetch_row_ahead(row, stride * 2, std::size_t(n) * 2);
        __m512i max = _mm512_setzero_si512();
        for (int i = 0; i < n; i += 32)
            max = _mm512_max_epu16(max, _mm512_and_si512(_mm512_loadu_si512(row + i), magnitude));
        max = _mm512_max_epu32(_mm512_and_si512(max, low_half), _mm512_srli_epi32(max, 16));
        scales[r] = scale_for_max_abs(from_bf16(static_cast<std::uint16_t>(_mm512_reduce_max_epu32(max))));
    }
    for (int r = 0; r < rows; ++r) {
        const std::uint16_t* row = values + r * stride;
        const __m512 inverse = _mm512_set1_ps(1.f / scales[r]);
        std::int8_t* out = q + std::int64_t(r) * n;
        for (int i = 0; i < n; i += 32) {
            const __m512i bf16 = _mm512_loadu_si512(row + i);
            const __m512i halves[2] = {_mm512_cvtepu16_epi32(_mm512_castsi512_si256(bf16)),
                                       _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(bf16, 1))};
            for (int h = 0; h < 2; ++h)
                store_quantized16(_mm512_castsi512_ps(_mm512_slli_epi32(halves[h], 16)), inverse, out + i + 16 * h);
        }
    }
}

// scale_add_bias_and_quantize_groups by AVX-512 for groups of a multiple of
// 16: each group's maximum taken as its values are computed, then its s8
// steps from L1 (the arithmetic of quantize_bf16_rows_avx512). All the
// groups' maxima first, as quantize_bf16_rows does its rows': their scales'
// divisions then overlap.
__attribute__((target("avx512f,avx512bw"))) void scale_add_bias_and_quantize_groups_avx512(
    float* values, int n, float scale, const float* bias, int group, std::int8_t* q, float* scales) {
    const __m512 times = _mm512_set1_ps(scale);
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    for (int first = 0; first < n; first += group) {
        __m512i max = _mm512_setzero_si512();
        for (int i = first; i < first + group; i += 16) {
            const __m512 x = _mm512_fmadd_ps(_mm512_loadu_ps(values + i), times, _mm512_loadu_ps(bias + i));
            _mm512_storeu_ps(values + i, x);
            max = _mm512_max_epu32(max, _mm512_and_si512(_mm512_castps_si512(x), magnitude));
        }
        const std::uint32_t max_bits = _mm512_reduce_max_epu32(max);
        std::memcpy(&scales[first / group], &max_bits, sizeof max_bits);  // max |x| for now
    }
    for (int g = 0; g < n / group; ++g) scales[g] = scale_for_max_abs(scales[g]);
    for (int first = 0; first < n; first += group) {
        const __m512 inverse = _mm512_set1_ps(1.f / scales[first / group]);
        for (int i = first; i < first + group; i += 16) store_quantized16(_mm512_loadu_ps(values + i), inverse, q + i);
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

ONEVIT_VECTOR_CLONES
void quantize_bf16_rows_portable(const std::uint16_t* values, std::int64_t stride, int rows, int n, std::int8_t* q,
                                 float* scales) {
    for (int r = 0; r < rows; ++r) {
        const std::uint16_t* row = values + r * stride;
        prefetch_row_ahead(row, stride * 2, std::size_t(n) * 2);  // bf16: 2 bytes a value
        std::uint16_t max_bits = 0;
        for (int i = 0; i < n; ++i) max_bits = std::max<std::uint16_t>(max_bits, row[i] & 0x7fffu);
        scales[r] = scale_for_max_abs(from_bf16(max_bits));
    }
    for (int r = 0; r < rows; ++r) {
        const std::uint16_t* row = values + r * stride;
        const float inverse = 1.f / scales[r];
        for (int i = 0; i < n; ++i) q[std::int64_t(r) * n + i] = quantized(from_bf16(row[i]), inverse);
    }
}

ONEVIT_VECTOR_CLONES
void scale_add_bias_and_quantize_groups_portable(float* values, int n, float scale, const float* bias, int group,
                                                 std::int8_t* q, float* scales) {
    for (int i = 0; i < n; ++i) values[i] = values[i] * scale + bias[i];
    for (int first = 0; first < n; first += group) {
        scales[first / group] = symmetric_scale(values + first, group);
        quantize(values + first, group, scales[first / group], q + first);
    }
}

}  // namespace

void scale_add_bias_and_quantize_groups(float* values, int n, float scale, const float* bias, int group, std::int8_t* q,
                                        float* scales) {
    static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    if (avx512 && group % 16 == 0)
        return scale_add_bias_and_quantize_groups_avx512(values, n, scale, bias, group, q, scales);
    scale_add_bias_and_quantize_groups_portable(values, n, scale, bias, group, q, scales);
}

void quantize_bf16_rows(const std::uint16_t* values, std::int64_t stride, int rows, int n, std::int8_t* q,
                        float* scales) {
    static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    if (avx512 && n % 32 == 0) return quantize_bf16_rows_avx512(values, stride, rows, n, q, scales);
    quantize_bf16_rows_portable(values, stride, rows, n, q, scales);
}

QuantizedWeights quantize_per_output_channel(const float* weight, int out, int in) {
    QuantizedWeights q;
    q.values.resize(std::size_t(out) * in);
    q.scales.resize(out);
    for (int o = 0; o < out; ++o) {
        const float* row = weight + std::size_t(o) * in;
        q.scales[o] = symmetric_scale(row, in);
        quantize(row, in, q.scales[o], q.values.data() + std::size_t(o) * in);
    }
    return q;
}

void store_row(const float* values, int n, const Activation& dst, std::int64_t row, std::int64_t stride,
               std::int64_t column, float scale) {
    using Type = Activation::Type;
    switch (dst.type) {
        case Type::f32: {
            auto* out = static_cast<float*>(dst.at(row, stride, column));
            if (scale == 1.f)
                std::memcpy(out, values, sizeof(float) * n);
            else
                scale_into(values, n, scale, out);
            return;
        }
        case Type::bf16:
            to_bf16_row(values, n, scale, static_cast<std::uint16_t*>(dst.at(row, stride, column)));
            return;
        case Type::s8: {  // scale > 0: round(x · scale / (max|x · scale| / 127)) = round(x / (max|x| / 127))
            const int group = dst.scale_group ? dst.scale_group : n;
            if (dst.scale_group ? column % group != 0 || n % group != 0 || stride % group != 0
                                : column != 0 || n != stride)
                throw std::logic_error("store_row: s8 rows are quantized in whole rows or scale groups");
            for (int first = 0; first < n; first += group) {
                const float group_scale = symmetric_scale(values + first, group);
                *dst.scale_at(row, stride, column + first) = group_scale * scale;
                quantize(values + first, group, group_scale,
                         static_cast<std::int8_t*>(dst.at(row, stride, column + first)));
            }
            return;
        }
        default:
            throw std::logic_error("store_row: unsupported activation type");
    }
}

void load_row(const Activation& src, std::int64_t row, std::int64_t stride, int n, float* values) {
    using Type = Activation::Type;
    switch (src.type) {
        case Type::f32:
            std::memcpy(values, src.at(row, stride), sizeof(float) * n);
            return;
        case Type::bf16:
            from_bf16_row(static_cast<const std::uint16_t*>(src.at(row, stride)), n, values);
            return;
        default:
            throw std::logic_error("load_row: unsupported activation type");
    }
}

}  // namespace onevit
