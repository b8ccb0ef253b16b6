#include "ops/layer_norm_avx512.hpp"

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "ops/bf16_store.hpp"

namespace onevit {

namespace {

// Wider rows run faster in the loops (docs/performance.md, "Per-op CPU time at batch 8").
constexpr int kMaxWidth = 256;

// GCC 12 warns of the "undefined" vectors inside its own intrinsics (bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

// lane_sum's last step (ops/vector_math.hpp): the 16 lanes added one after another, lane 0 first.
ONEVIT_BF16_TARGET inline float sum_in_lane_order(__m512 lanes) {
    alignas(64) float lane[16];
    _mm512_store_ps(lane, lanes);
    float sum = 0.f;
    for (float value : lane) sum += value;
    return sum;
}

// centred · inverse_std · scale + shift, 16 values.
ONEVIT_BF16_TARGET inline __m512 scaled(const float* centred, __m512 inverse_std, const float* scale,
                                        const float* shift) {
    return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_loadu_ps(centred), inverse_std), _mm512_loadu_ps(scale),
                           _mm512_loadu_ps(shift));
}

// The operations of centre_row, scale_row and store_row's (quantize.cpp) as
// GCC's AVX-512 build of those loops performs them: lane l of a sum adds
// values l, l + 16, …; the squares and the scale-and-shift in fused
// multiply-adds; s8 steps by adding and subtracting 1.5·2^23, clamped (NaN → 127).
template <int R, bool S8>
ONEVIT_BF16_TARGET inline void norm_rows(const NormParams& p, const float* x, const Activation& dst, int first,
                                         float* y) {
    const int dim = p.dim;
    __m512 sum[R], mean[R], inverse_std[R];
    for (int r = 0; r < R; ++r) sum[r] = _mm512_setzero_ps();
    for (int i = 0; i < dim; i += 16)
        for (int r = 0; r < R; ++r) sum[r] = _mm512_add_ps(sum[r], _mm512_loadu_ps(x + r * dim + i));
    for (int r = 0; r < R; ++r) mean[r] = _mm512_set1_ps(sum_in_lane_order(sum[r]) / dim), sum[r] = _mm512_setzero_ps();
    for (int i = 0; i < dim; i += 16)
        for (int r = 0; r < R; ++r) {
            const __m512 centred = _mm512_sub_ps(_mm512_loadu_ps(x + r * dim + i), mean[r]);
            _mm512_storeu_ps(y + r * dim + i, centred);
            sum[r] = _mm512_fmadd_ps(centred, centred, sum[r]);
        }
    for (int r = 0; r < R; ++r)
        inverse_std[r] = _mm512_set1_ps(1.f / std::sqrt(sum_in_lane_order(sum[r]) / dim + p.eps));
    if constexpr (!S8) {
        for (int i = 0; i < dim; i += 16)
            for (int r = 0; r < R; ++r)
                _mm256_storeu_si256(
                    static_cast<__m256i*>(dst.at(first + r, dim, i)),
                    (__m256i)_mm512_cvtneps_pbh(scaled(y + r * dim + i, inverse_std[r], p.scale + i, p.shift + i)));
        return;
    }
    // |x| orders as its bits with the sign cleared (quantize.cpp's max_abs_of).
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    __m512i max_bits[R];
    for (int r = 0; r < R; ++r) max_bits[r] = _mm512_setzero_si512();
    for (int i = 0; i < dim; i += 16)
        for (int r = 0; r < R; ++r) {
            const __m512 value = scaled(y + r * dim + i, inverse_std[r], p.scale + i, p.shift + i);
            _mm512_storeu_ps(y + r * dim + i, value);
            max_bits[r] = _mm512_max_epu32(max_bits[r], _mm512_and_si512(_mm512_castps_si512(value), magnitude));
        }
    __m512 inverse[R];
    for (int r = 0; r < R; ++r) {
        const std::uint32_t bits = _mm512_reduce_max_epu32(max_bits[r]);
        float max_abs;
        std::memcpy(&max_abs, &bits, sizeof max_abs);
        const float row_scale = max_abs > 0.f ? max_abs / 127.f : 1.f;
        dst.row_scales[first + r] = row_scale;
        inverse[r] = _mm512_set1_ps(1.f / row_scale);
    }
    const __m512 magic = _mm512_set1_ps(12582912.f), top = _mm512_set1_ps(127.f), bottom = _mm512_set1_ps(-127.f);
    for (int i = 0; i < dim; i += 16)
        for (int r = 0; r < R; ++r) {
            const __m512 step = _mm512_mul_ps(_mm512_loadu_ps(y + r * dim + i), inverse[r]);
            const __m512 rounded = _mm512_sub_ps(_mm512_add_ps(step, magic), magic);
            const __m512 clamped = _mm512_max_ps(_mm512_min_ps(rounded, top), bottom);
            _mm_storeu_si128(static_cast<__m128i*>(dst.at(first + r, dim, i)),
                             _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(clamped)));
        }
}

template <bool S8>
ONEVIT_BF16_TARGET void norm_rows_of(const NormParams& p, const float* src, int first, int count, const Activation& dst,
                                     float* scratch) {
    int row = first;
    for (; row + kLayerNormRowsAtOnce <= first + count; row += kLayerNormRowsAtOnce)
        norm_rows<kLayerNormRowsAtOnce, S8>(p, src + std::int64_t(row) * p.dim, dst, row, scratch);
    for (; row < first + count; ++row) norm_rows<1, S8>(p, src + std::int64_t(row) * p.dim, dst, row, scratch);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace

bool layer_norm_rows_avx512_runs(const NormParams& params, Activation::Type dst) {
    return params.kind == Norm::layer && params.dim % 16 == 0 && params.dim <= kMaxWidth && cpu_rounds_to_bf16() &&
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
