#include "ops/layer_norm_avx512.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "ops/bf16_store.hpp"
#include "ops/prefetch_rows.hpp"
#include "ops/s8_store.hpp"
#include "ops/vector_math.hpp"

namespace onevit {

namespace {

// GCC 12 warns of the "undefined" vectors inside its own intrinsics (bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

constexpr int R = kLayerNormRowsAtOnce;
static_assert(R == 4, "the reductions put four rows side by side in a vector of 4 lanes");

ONEVIT_BF16_TARGET inline __m128 add(__m128 a, __m128 b) { return _mm_add_ps(a, b); }

// |x| orders as its bits with the sign cleared (quantize.cpp's max_abs_of), so
// the maximum of magnitudes is an unsigned one, and a NaN stays the largest.
ONEVIT_BF16_TARGET inline __m128 max_bits(__m128 a, __m128 b) {
    return _mm_castsi128_ps(_mm_max_epu32(_mm_castps_si128(a), _mm_castps_si128(b)));
}

// Four rows' 16 lanes folded by combine (a sum or a maximum), row r's result
// in lane r: 0 combined with lane 0, then lanes 1, …, 15 one after another —
// lane_sum's order (ops/vector_math.hpp), so the sums are normalize_row's bit
// for bit — the four rows side by side in one chain of 16 operations where
// each row alone would run a chain of its own.
template <__m128 (*combine)(__m128, __m128)>
ONEVIT_BF16_TARGET inline __m128 fold_rows(const __m512 (&v)[R]) {
    // Block k of each row, then lane 4k + b of each row in block b of by_lane.
    const __m512 low01 = _mm512_shuffle_f32x4(v[0], v[1], 0x44), high01 = _mm512_shuffle_f32x4(v[0], v[1], 0xee);
    const __m512 low23 = _mm512_shuffle_f32x4(v[2], v[3], 0x44), high23 = _mm512_shuffle_f32x4(v[2], v[3], 0xee);
    const __m512 blocks[4] = {_mm512_shuffle_f32x4(low01, low23, 0x88), _mm512_shuffle_f32x4(low01, low23, 0xdd),
                              _mm512_shuffle_f32x4(high01, high23, 0x88), _mm512_shuffle_f32x4(high01, high23, 0xdd)};
    const __m512i by_lane = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m128 folded = _mm_setzero_ps();
    for (const __m512 block : blocks) {
        const __m512 lanes = _mm512_permutexvar_ps(by_lane, block);
        folded = combine(folded, _mm512_castps512_ps128(lanes));
        folded = combine(folded, _mm512_extractf32x4_ps(lanes, 1));
        folded = combine(folded, _mm512_extractf32x4_ps(lanes, 2));
        folded = combine(folded, _mm512_extractf32x4_ps(lanes, 3));
    }
    return folded;
}

// Row r's value of a fold_rows result, in all 16 lanes.
ONEVIT_BF16_TARGET inline __m512 of_row(__m128 folded, int r) {
    return _mm512_permutexvar_ps(_mm512_set1_epi32(r), _mm512_castps128_ps512(folded));
}

// Rows first .. first + kRows − 1 of dst = LayerNorm of the rows at x.
// The statistics in two passes (the mean, then the squares about it, which
// keeps rows whose mean is far from 0 accurate); the sums in 16 lanes, then
// lane by lane in lane_sum's order. s8 keeps the scaled rows in scratch for
// their maximum, vector by vector interleaved (no two rows' stores 4 KB
// apart); bf16 stores each value at once. ahead: how many of the rows
// kPrefetchRowsAhead on (two groups) are the task's; the second and third
// passes ask for their src and dst lines, as the hardware prefetchers do not
// follow four short rows side by side.
template <bool kS8, int kRows>
ONEVIT_BF16_TARGET void norm_rows(const NormParams& p, const float* x, const Activation& dst, int first, float* scratch,
                                  int ahead) {
    constexpr int kBytes = kS8 ? 1 : 2;  // a value's in dst
    const int dim = p.dim;
    const float* src_ahead = ahead ? x + std::int64_t(kPrefetchRowsAhead) * dim : nullptr;
    const char* dst_ahead = ahead ? static_cast<const char*>(dst.at(first + kPrefetchRowsAhead, dim)) : nullptr;
    const float* row[kRows];
    char* out[kRows];
    for (int r = 0; r < kRows; ++r)
        row[r] = x + std::int64_t(r) * dim, out[r] = static_cast<char*>(dst.at(first + r, dim));
    __m512 sum[R];  // rows past kRows stay 0
    for (int r = 0; r < R; ++r) sum[r] = _mm512_setzero_ps();
    for (int i = 0; i < dim; i += 16)
        for (int r = 0; r < kRows; ++r) sum[r] = _mm512_add_ps(sum[r], _mm512_loadu_ps(row[r] + i));
    const __m128 means = _mm_div_ps(fold_rows<add>(sum), _mm_set1_ps(float(dim)));
    __m512 mean[R];
    for (int r = 0; r < R; ++r) mean[r] = of_row(means, r), sum[r] = _mm512_setzero_ps();
    for (int i = 0; i < dim; i += 16) {
        for (int r = 0; r < ahead; ++r) __builtin_prefetch(src_ahead + std::int64_t(r) * dim + i);
        for (int r = 0; r < kRows; ++r) {
            const __m512 centred = _mm512_sub_ps(_mm512_loadu_ps(row[r] + i), mean[r]);
            sum[r] = _mm512_fmadd_ps(centred, centred, sum[r]);
        }
    }
    const __m128 variances = _mm_div_ps(fold_rows<add>(sum), _mm_set1_ps(float(dim)));
    const __m128 inverse_stds = _mm_div_ps(_mm_set1_ps(1.f), _mm_sqrt_ps(_mm_add_ps(variances, _mm_set1_ps(p.eps))));
    __m512 inverse_std[R];
    for (int r = 0; r < R; ++r) inverse_std[r] = of_row(inverse_stds, r);
    // (x − mean) · inverse_std · scale + shift: each row's 16 values from i on
    // (scale and shift loaded once: the stores between may alias them).
    const auto values_at = [&](int i, __m512(&v)[R]) ONEVIT_BF16_TARGET {
        if (i * kBytes % 64 == 0)  // a line of each dst row ahead
            for (int r = 0; r < ahead; ++r) __builtin_prefetch(dst_ahead + (std::int64_t(r) * dim + i) * kBytes);
        const __m512 scale = _mm512_loadu_ps(p.scale + i), shift = _mm512_loadu_ps(p.shift + i);
        for (int r = 0; r < kRows; ++r) {
            const __m512 centred = _mm512_sub_ps(_mm512_loadu_ps(row[r] + i), mean[r]);
            v[r] = _mm512_fmadd_ps(_mm512_mul_ps(centred, inverse_std[r]), scale, shift);
        }
    };
    __m512 v[R];
    if constexpr (!kS8) {
        for (int i = 0; i < dim; i += 16) {
            values_at(i, v);
            for (int r = 0; r < kRows; ++r)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[r] + i * kBytes), (__m256i)_mm512_cvtneps_pbh(v[r]));
        }
    } else {
        const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
        __m512 largest[R];
        for (int r = 0; r < R; ++r) largest[r] = _mm512_setzero_ps();
        for (int i = 0; i < dim; i += 16) {
            values_at(i, v);
            for (int r = 0; r < kRows; ++r) {
                _mm512_storeu_ps(scratch + (i * R + 16 * r), v[r]);
                const __m512i bits = _mm512_and_si512(_mm512_castps_si512(v[r]), magnitude);
                largest[r] = _mm512_castsi512_ps(_mm512_max_epu32(_mm512_castps_si512(largest[r]), bits));
            }
        }
        // store_row's s8 rows (quantize.cpp) as GCC builds them: scale max|row| /
        // 127 (1 for a row of zeros or with a NaN), each value · 1 / scale rounded
        // to even by kRoundingMagic in the same multiply-add, clamped to ±127 (a NaN
        // to 127).
        const __m128 max_abs = fold_rows<max_bits>(largest);
        const __m128 scales = _mm_mask_div_ps(_mm_set1_ps(1.f), _mm_cmp_ps_mask(max_abs, _mm_setzero_ps(), _CMP_GT_OQ),
                                              max_abs, _mm_set1_ps(127.f));
        float lanes[R];
        _mm_storeu_ps(lanes, scales);
        for (int r = 0; r < kRows; ++r) dst.row_scales[first + r] = lanes[r];
        const __m128 inverses = _mm_div_ps(_mm_set1_ps(1.f), scales);
        __m512 inverse[R];
        for (int r = 0; r < R; ++r) inverse[r] = of_row(inverses, r);
        for (int i = 0; i < dim; i += 16)
            for (int r = 0; r < kRows; ++r)
                store_quantized16(_mm512_loadu_ps(scratch + (i * R + 16 * r)), inverse[r],
                                  reinterpret_cast<std::int8_t*>(out[r] + i * kBytes));
    }
}

template <bool kS8>
ONEVIT_BF16_TARGET void norm_rows_of(const NormParams& p, const float* src, int first, int count, const Activation& dst,
                                     float* scratch) {
    const int end = first + count;
    int row = first;
    for (; row + R <= end; row += R) {
        const int ahead = std::clamp(end - (row + kPrefetchRowsAhead), 0, R);
        norm_rows<kS8, R>(p, src + std::int64_t(row) * p.dim, dst, row, scratch, ahead);
    }
    const float* rest = src + std::int64_t(row) * p.dim;
    switch (end - row) {
        case 3:
            return norm_rows<kS8, 3>(p, rest, dst, row, scratch, 0);
        case 2:
            return norm_rows<kS8, 2>(p, rest, dst, row, scratch, 0);
        case 1:
            return norm_rows<kS8, 1>(p, rest, dst, row, scratch, 0);
        default:
            return;
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace

bool layer_norm_rows_avx512_runs(const NormParams& params, Activation::Type dst) {
    return params.kind == Norm::layer && params.dim % 16 == 0 && cpu_rounds_to_bf16() &&
           (dst == Activation::Type::s8 || dst == Activation::Type::bf16);
}

void layer_norm_rows_avx512(const NormParams& params, const float* src, int first, int count, const Activation& dst,
                            float* scratch) {
    if (dst.type == Activation::Type::s8)
        norm_rows_of<true>(params, src, first, count, dst, scratch);
    else
        norm_rows_of<false>(params, src, first, count, dst, scratch);
}

}  // namespace onevit
