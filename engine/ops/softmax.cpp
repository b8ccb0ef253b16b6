#include "ops/softmax.hpp"

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include <algorithm>

#include "ops/bf16_round_avx512.hpp"
#include "ops/bf16_store.hpp"  // first_lanes
#include "ops/quantize.hpp"
#include "ops/vector_math.hpp"

namespace onevit {

namespace {

// Floats that are not NaN order as these integers: the bits with, for
// negative values, all but the sign flipped (its own inverse). An integer
// maximum vectorises, where a float one (std::max's NaN order) does not.
inline std::int32_t ordered_bits(std::int32_t bits) { return bits ^ ((bits >> 31) & 0x7fffffff); }
inline std::int32_t order_key(float value) {
    std::int32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return ordered_bits(bits);
}
inline float from_order_key(std::int32_t key) {
    const std::int32_t bits = ordered_bits(key);
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}
constexpr float kMinusInfinity = -__builtin_inff();

ONEVIT_VECTOR_CLONES
float max_of(const float* values, int n) {
    std::int32_t max_key = order_key(kMinusInfinity);
    for (int i = 0; i < n; ++i) max_key = std::max(max_key, order_key(values[i]));
    return from_order_key(max_key);
}

// values[i] = e^{values[i] − shift}, in place; returns their sum.
ONEVIT_VECTOR_CLONES
float exp_shifted_sum(float* values, int n, float shift) {
    return lane_sum(n, [&](int i) { return values[i] = exp_of(values[i] - shift); });
}

// The same to bf16's precision (vector_math.hpp), for probabilities stored as
// bf16 or u8.
ONEVIT_VECTOR_CLONES
float exp_shifted_sum_for_bf16(float* values, int n, float shift) {
    return lane_sum(n, [&](int i) { return values[i] = exp_for_bf16(values[i] - shift); });
}

ONEVIT_VECTOR_CLONES
void add_into(float* values, int n, const float* addend) {
    for (int i = 0; i < n; ++i) values[i] += addend[i];
}

ONEVIT_VECTOR_CLONES
void scale_row(float* values, int n, float scale) {
    for (int i = 0; i < n; ++i) values[i] *= scale;
}

ONEVIT_VECTOR_CLONES
void scale_by(float* values, int n, float row_scale, const float* col_scales) {
    for (int i = 0; i < n; ++i) values[i] *= row_scale * col_scales[i];
}

// values[i] *= row_scale · col_scales[i] (row_scale only, col_scales null);
// returns their maximum: the two passes of a row in one.
ONEVIT_VECTOR_CLONES
float scale_by_and_max(float* values, int n, float row_scale, const float* col_scales) {
    std::int32_t max_key = order_key(kMinusInfinity);
    for (int i = 0; i < n; ++i)
        max_key = std::max(max_key, order_key(values[i] *= col_scales ? row_scale * col_scales[i] : row_scale));
    return from_order_key(max_key);
}

// values (≥ 0, or NaN from a hostile model) to u8 steps of max/255, rounded
// to nearest even; NaN clamps to 255 (std::min's order), never undefined.
ONEVIT_VECTOR_CLONES
void quantize_u8(const float* values, int n, float inverse_step, std::uint8_t* out) {
    for (int i = 0; i < n; ++i)
        out[i] = static_cast<std::uint8_t>(std::max(0.f, std::min(255.f, round_even(values[i] * inverse_step))));
}

}  // namespace

namespace {
// GCC 12 warns of the "undefined" vectors inside its own intrinsics (bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define ONEVIT_AVX512 __attribute__((target("avx512f"), always_inline)) inline

// Lanes j… of the scores (masked lanes: 0), stored in place.
ONEVIT_AVX512 __m512 scores_u8(float* row, const float* k_scales, const float* bias_row, __m512 row_scale, int j,
                               __mmask16 m) {
    const __m512 k_scale = k_scales ? _mm512_maskz_loadu_ps(m, k_scales + j) : _mm512_set1_ps(1.f);
    __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), _mm512_mul_ps(row_scale, k_scale));
    if (bias_row) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, bias_row + j));
    _mm512_mask_storeu_ps(row + j, m, x);
    return x;
}

// e^(x − max) for lanes j…, as exp_for_bf16 computes it in the portable
// loops' AVX-512 build (GCC fuses y · log2 e into its two uses, and the
// polynomial's steps), so that both give the same bits: 2^k · 2^f for
// (x − max) · log2 e = k + f, |f| ≤ 1/2, 2^k applied by vscalefps. Without
// exp_for_bf16's clamp: below x − max = −87 both give under 2e-38, nothing
// to a sum (≥ 1), to u8 steps (0) nor to bf16 probabilities (≤ 2e-38).
ONEVIT_AVX512 __m512 exponentials(const float* row, __m512 max, int j, __mmask16 m) {
    const __m512 log2e = _mm512_set1_ps(1.44269504f), magic = _mm512_set1_ps(kRoundingMagic);
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + j), max);
    const __m512 k = _mm512_sub_ps(_mm512_fmadd_ps(d, log2e, magic), magic);  // rounded to nearest even
    const __m512 f = _mm512_fmsub_ps(d, log2e, k);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.0551693751f), f, _mm512_set1_ps(0.24260777f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.693261107f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.999928292f));
    return _mm512_scalef_ps(p, k);
}

// The sum of e, accumulated in lanes and a row's tail, in lane_sum's order:
// the tail, then the lanes.
ONEVIT_AVX512 float lane_sum_order(__m512 lanes, __m512 tail, int tail_size) {
    alignas(64) float tail_e[16], lane_sums[16];
    _mm512_store_ps(tail_e, tail);
    _mm512_store_ps(lane_sums, lanes);
    float sum = 0.f;
    for (int j = 0; j < tail_size; ++j) sum += tail_e[j];
    for (float lane : lane_sums) sum += lane;
    return sum;
}

// e^(x − max) for lanes j… (*e), and e · v's scale, stored in place.
ONEVIT_AVX512 __m512 exponentials_u8(float* row, const float* v_scales, __m512 max, int j, __mmask16 m, __m512* e) {
    *e = exponentials(row, max, j, m);
    const __m512 weighted = _mm512_mul_ps(*e, _mm512_maskz_loadu_ps(m, v_scales + j));
    _mm512_mask_storeu_ps(row + j, m, weighted);
    return weighted;
}

// Lanes j… to u8 steps, rounded to nearest even as round_even does (fused);
// the values are ≥ 0, and a NaN converts to 0x80000000, which unsigned
// saturation takes to 255, as the portable loop's clamp does.
ONEVIT_AVX512 void steps_u8(const float* row, __m512 inverse_step, int j, __mmask16 m, std::uint8_t* out) {
    const __m512 magic = _mm512_set1_ps(kRoundingMagic);
    const __m512 rounded =
        _mm512_sub_ps(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, row + j), inverse_step, magic), magic);
    _mm512_mask_cvtusepi32_storeu_epi8(out + j, m, _mm512_cvtps_epi32(rounded));
}

// The kernels below run kInterleavedRows rows at once: independent chains,
// so that one row's sums and maxima, which wait on one another, overlap with
// the other rows' exponentials (docs/performance.md, "Attention").
constexpr int kInterleavedRows = 4;

// Whether rows of cols floats, interleaved kInterleavedRows at a time, lie
// within 256 bytes of a multiple of 4 KB from one another: the CPU checks a
// load against earlier stores by the address's low 12 bits, so one row's
// loads would wait on another's stores. Such rows run one at a time.
bool rows_alias(int cols) {
    for (int k = 1; k < kInterleavedRows; ++k) {
        const std::int64_t offset = std::int64_t(k) * cols * std::int64_t(sizeof(float)) % 4096;
        if (offset < 256 || offset > 4096 - 256) return true;
    }
    return false;
}

// Passes two and three of R rows of softmax_rows_u8's AVX-512 kernel, rows
// cols apart, from their scores and maxima (in every lane): the exponentials,
// their sum, times v's scales and the maximum of those; the u8 steps. p's
// scales to p_scales[0 … R).
template <int R>
ONEVIT_AVX512 void u8_from_scores(float* scores, int cols, const __m512 (&max)[R], const float* v_scales,
                                  std::uint8_t* u8, float* p_scales) {
    constexpr int kLanes = 16;
    const int full = cols - cols % kLanes;
    const __mmask16 all = 0xffff, tail = first_lanes(cols - full);
    __m512 lanes[R], weighted_max[R], e[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) lanes[i] = weighted_max[i] = e[i] = _mm512_setzero_ps();
    for (int j = 0; j < full; j += kLanes) {
#pragma GCC unroll 4
        for (int i = 0; i < R; ++i) {
            weighted_max[i] = _mm512_max_ps(
                weighted_max[i], exponentials_u8(scores + std::int64_t(i) * cols, v_scales, max[i], j, all, &e[i]));
            lanes[i] = _mm512_add_ps(lanes[i], e[i]);
        }
    }
    if (tail) {
#pragma GCC unroll 4
        for (int i = 0; i < R; ++i)
            weighted_max[i] = _mm512_mask_max_ps(
                weighted_max[i], tail, weighted_max[i],
                exponentials_u8(scores + std::int64_t(i) * cols, v_scales, max[i], full, tail, &e[i]));
    }
    __m512 inverse_step[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
        const float step = _mm512_reduce_max_ps(weighted_max[i]) / 255.f;
        inverse_step[i] = _mm512_set1_ps(step > 0.f ? 1.f / step : 0.f);
        p_scales[i] = step / lane_sum_order(lanes[i], e[i], cols - full);
    }
    for (int j = 0; j < cols; j += kLanes) {
#pragma GCC unroll 4
        for (int i = 0; i < R; ++i)
            steps_u8(scores + std::int64_t(i) * cols, inverse_step[i], j, j < full ? all : tail,
                     u8 + std::int64_t(i) * cols);
    }
}

// The AVX-512 kernel of softmax_rows_u8, three passes a row where the
// portable loops take four: the scores and their maximum; the exponentials,
// their sum, times v's scales and the maximum of those; the u8 steps. Its
// arithmetic is the portable loops' (GCC's build of them for AVX-512), sums
// in lane_sum's order included, so the two give the same probabilities; the
// gain is fewer passes and instructions. The tail of a row (197 = 12·16 + 5)
// is masked lanes.
__attribute__((target("avx512f"))) void softmax_rows_u8_avx512(float* products, int rows, int cols,
                                                               const float* q_scales, float scale,
                                                               const float* k_scales, const float* bias,
                                                               const float* v_scales, std::uint8_t* u8,
                                                               float* p_scales) {
    const int full = cols - cols % 16;
    const __mmask16 all = 0xffff, tail = first_lanes(cols - full);
    for (int r = 0; r < rows; ++r) {
        float* row = products + std::int64_t(r) * cols;
        const float* bias_row = bias ? bias + std::int64_t(r) * cols : nullptr;
        const __m512 row_scale = _mm512_set1_ps(q_scales[r] * scale);
        __m512 max = _mm512_set1_ps(-__builtin_inff());
        for (int j = 0; j < cols; j += 16) {
            const __mmask16 m = j < full ? all : tail;
            max = _mm512_mask_max_ps(max, m, max, scores_u8(row, k_scales, bias_row, row_scale, j, m));
        }
        const __m512 row_max[1] = {_mm512_set1_ps(_mm512_reduce_max_ps(max))};
        u8_from_scores<1>(row, cols, row_max, v_scales, u8 + std::int64_t(r) * cols, p_scales + r);
    }
}

// u8_from_scores from each row's 16 lane maxima.
template <int R>
ONEVIT_AVX512 void u8_from_lane_maxima(float* scores, int cols, const float* lane_maxima, const float* v_scales,
                                       std::uint8_t* u8, float* p_scales) {
    __m512 max[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) max[i] = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_loadu_ps(lane_maxima + 16 * i)));
    u8_from_scores<R>(scores, cols, max, v_scales, u8, p_scales);
}

__attribute__((target("avx512f"))) void softmax_rows_u8_from_scores_avx512(float* scores, int rows, int cols,
                                                                           const float* lane_maxima,
                                                                           const float* v_scales, std::uint8_t* u8,
                                                                           float* p_scales) {
    int r = 0;
    for (; !rows_alias(cols) && r + kInterleavedRows <= rows; r += kInterleavedRows)
        u8_from_lane_maxima<kInterleavedRows>(scores + std::int64_t(r) * cols, cols, lane_maxima + 16 * r, v_scales,
                                              u8 + std::int64_t(r) * cols, p_scales + r);
    for (; r < rows; ++r)
        u8_from_lane_maxima<1>(scores + std::int64_t(r) * cols, cols, lane_maxima + 16 * r, v_scales,
                               u8 + std::int64_t(r) * cols, p_scales + r);
}

// Lanes j… times scale, to bf16 (to_bf16_row's rounding to nearest even, and
// its NaN), stored.
ONEVIT_AVX512 void to_bf16(const float* row, __m512 scale, int j, __mmask16 m, std::uint16_t* out) {
    _mm512_mask_cvtepi32_storeu_epi16(out + j, m, bf16_bits(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), scale)));
}

// Passes two and three of a row of the bf16 kernel, from its scores and their
// maximum (in every lane): the exponentials and their sum; bf16 probabilities.
ONEVIT_AVX512 void bf16_from_scores(float* row, int cols, __m512 max, std::uint16_t* out) {
    constexpr int kLanes = 16;
    const int full = cols - cols % kLanes;
    const __mmask16 all = 0xffff, tail = first_lanes(cols - full);
    __m512 lanes = _mm512_setzero_ps(), e = _mm512_setzero_ps();
    for (int j = 0; j < full; j += kLanes) {
        e = exponentials(row, max, j, all);
        _mm512_storeu_ps(row + j, e);
        lanes = _mm512_add_ps(lanes, e);
    }
    if (tail) {
        e = exponentials(row, max, full, tail);
        _mm512_mask_storeu_ps(row + full, tail, e);
    }
    const __m512 inverse_sum = _mm512_set1_ps(1.f / lane_sum_order(lanes, e, cols - full));
    for (int j = 0; j < cols; j += kLanes) to_bf16(row, inverse_sum, j, j < full ? all : tail, out);
}

// The AVX-512 kernel of softmax_rows with bf16 probabilities, its three
// passes (the scores, bias added, and their maximum; the exponentials and
// their sum; bf16 probabilities) on its arithmetic, as softmax_rows_u8_avx512.
__attribute__((target("avx512f"))) void softmax_rows_bf16_avx512(float* scores, int rows, int cols,
                                                                 std::uint16_t* probabilities, const float* bias) {
    constexpr int kLanes = 16;
    const int full = cols - cols % kLanes;
    const __mmask16 all = 0xffff, tail = first_lanes(cols - full);
    for (int r = 0; r < rows; ++r) {
        float* row = scores + std::int64_t(r) * cols;
        const float* bias_row = bias ? bias + std::int64_t(r) * cols : nullptr;
        __m512 max = _mm512_set1_ps(-__builtin_inff());
        for (int j = 0; j < cols; j += kLanes) {
            const __mmask16 m = j < full ? all : tail;
            __m512 x = _mm512_maskz_loadu_ps(m, row + j);
            if (bias_row) {
                x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, bias_row + j));
                _mm512_mask_storeu_ps(row + j, m, x);
            }
            max = _mm512_mask_max_ps(max, m, max, x);
        }
        bf16_from_scores(row, cols, _mm512_set1_ps(_mm512_reduce_max_ps(max)), probabilities + std::int64_t(r) * cols);
    }
}

// One pass a row: the exponentials to bf16, and 1 / their sum (f32, in
// lane_sum's order). Rounded by vcvtneps2bf16 (the CPU has AVX512_BF16, as
// the kernel that wrote the scores): to nearest even as to_bf16_row, but
// subnormal exponentials (x − max < −87) flush to 0, nothing to a sum ≥ 1.
// R rows at once, as u8_from_scores.
#define ONEVIT_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"), always_inline)) inline
template <int R>
ONEVIT_AVX512_BF16 void bf16_from_scores_rows(const float* scores, int cols, const float* lane_maxima,
                                              std::uint16_t* exponentials_out, float* inverse_sums) {
    constexpr int kLanes = 16;
    const int full = cols - cols % kLanes;
    const __mmask16 all = 0xffff, tail = first_lanes(cols - full);
    __m512 max[R], lanes[R], e[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
        max[i] = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_loadu_ps(lane_maxima + kLanes * i)));
        lanes[i] = e[i] = _mm512_setzero_ps();
    }
    for (int j = 0; j < full; j += kLanes) {
#pragma GCC unroll 4
        for (int i = 0; i < R; ++i) {
            e[i] = exponentials(scores + std::int64_t(i) * cols, max[i], j, all);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(exponentials_out + std::int64_t(i) * cols + j),
                                (__m256i)_mm512_cvtneps_pbh(e[i]));
            lanes[i] = _mm512_add_ps(lanes[i], e[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
        if (tail) {
            e[i] = exponentials(scores + std::int64_t(i) * cols, max[i], full, tail);
            _mm256_mask_storeu_epi16(exponentials_out + std::int64_t(i) * cols + full, tail,
                                     (__m256i)_mm512_cvtneps_pbh(e[i]));
        }
        inverse_sums[i] = 1.f / lane_sum_order(lanes[i], e[i], cols - full);
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void softmax_rows_bf16_from_scores_avx512(
    const float* scores, int rows, int cols, const float* lane_maxima, std::uint16_t* exponentials_out,
    float* inverse_sums) {
    int r = 0;
    for (; !rows_alias(cols) && r + kInterleavedRows <= rows; r += kInterleavedRows)
        bf16_from_scores_rows<kInterleavedRows>(scores + std::int64_t(r) * cols, cols, lane_maxima + 16 * r,
                                                exponentials_out + std::int64_t(r) * cols, inverse_sums + r);
    for (; r < rows; ++r)
        bf16_from_scores_rows<1>(scores + std::int64_t(r) * cols, cols, lane_maxima + 16 * r,
                                 exponentials_out + std::int64_t(r) * cols, inverse_sums + r);
}

// e^x as exp_of computes it (its clamp, rounding to k and degree-6
// polynomial; a NaN stays NaN), 16 lanes, its products fused.
ONEVIT_AVX512 __m512 exp_f32(__m512 x) {
    const __m512 magic = _mm512_set1_ps(kRoundingMagic);
    x = _mm512_min_ps(_mm512_set1_ps(88.f), _mm512_max_ps(_mm512_set1_ps(-87.f), x));  // NaN: the second operand
    const __m512 shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504f), magic);
    const __m512 r = _mm512_fnmadd_ps(_mm512_sub_ps(shifted, magic), _mm512_set1_ps(0.693147181f), x);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.f / 720), r, _mm512_set1_ps(1.f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    const __m512i two_to_k =
        _mm512_slli_epi32(_mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4b400000 - 127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(two_to_k));
}

// One pass a row, in place: the exponentials e^(x − max) (f32, exp_of's),
// and 1 / their sum. R rows at once, as u8_from_scores.
template <int R>
ONEVIT_AVX512 void f32_from_scores_rows(float* scores, int cols, const float* lane_maxima, float* inverse_sums) {
    constexpr int kLanes = 16;
    const int full = cols - cols % kLanes;
    const __mmask16 tail = first_lanes(cols - full);
    __m512 max[R], lanes[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
        max[i] = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_loadu_ps(lane_maxima + kLanes * i)));
        lanes[i] = _mm512_setzero_ps();
    }
    for (int j = 0; j < full; j += kLanes) {
#pragma GCC unroll 4
        for (int i = 0; i < R; ++i) {
            float* at = scores + std::int64_t(i) * cols + j;
            const __m512 e = exp_f32(_mm512_sub_ps(_mm512_loadu_ps(at), max[i]));
            _mm512_storeu_ps(at, e);
            lanes[i] = _mm512_add_ps(lanes[i], e);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
        if (tail) {
            float* at = scores + std::int64_t(i) * cols + full;
            const __m512 e = exp_f32(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, at), max[i]));
            _mm512_mask_storeu_ps(at, tail, e);
            lanes[i] = _mm512_mask_add_ps(lanes[i], tail, lanes[i], e);
        }
        inverse_sums[i] = 1.f / _mm512_reduce_add_ps(lanes[i]);
    }
}

__attribute__((target("avx512f"))) void softmax_rows_f32_from_scores_avx512(float* scores, int rows, int cols,
                                                                            const float* lane_maxima,
                                                                            float* inverse_sums) {
    int r = 0;
    for (; !rows_alias(cols) && r + kInterleavedRows <= rows; r += kInterleavedRows)
        f32_from_scores_rows<kInterleavedRows>(scores + std::int64_t(r) * cols, cols, lane_maxima + 16 * r,
                                               inverse_sums + r);
    for (; r < rows; ++r)
        f32_from_scores_rows<1>(scores + std::int64_t(r) * cols, cols, lane_maxima + 16 * r, inverse_sums + r);
}
#undef ONEVIT_AVX512_BF16
#undef ONEVIT_AVX512
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}  // namespace

// Four passes a row: the scales and the maximum (bias: three); the
// exponentials and their sum; v's scales and their maximum; the u8 steps.
void softmax_rows_u8_portable(float* products, int rows, int cols, const float* q_scales, float scale,
                              const float* k_scales, const float* bias, const float* v_scales, std::uint8_t* u8,
                              float* p_scales, float* probabilities) {
    for (int r = 0; r < rows; ++r) {
        float* row = products + std::int64_t(r) * cols;
        float max = 0.f;
        if (bias) {
            if (k_scales)
                scale_by(row, cols, q_scales[r] * scale, k_scales);
            else
                scale_row(row, cols, q_scales[r] * scale);
            add_into(row, cols, bias + std::int64_t(r) * cols);
            max = max_of(row, cols);
        } else {
            max = scale_by_and_max(row, cols, q_scales[r] * scale, k_scales);
        }
        const float sum = exp_shifted_sum_for_bf16(row, cols, max);  // ample for u8 steps
        if (probabilities) store_row(row, cols, Activation(probabilities), r, cols, 0, 1.f / sum);
        const float step = scale_by_and_max(row, cols, 1.f, v_scales) / 255.f;
        quantize_u8(row, cols, step > 0.f ? 1.f / step : 0.f, u8 + std::int64_t(r) * cols);
        p_scales[r] = step / sum;
    }
}

void softmax_rows_u8(float* products, int rows, int cols, const float* q_scales, float scale, const float* k_scales,
                     const float* bias, const float* v_scales, std::uint8_t* u8, float* p_scales,
                     float* probabilities) {
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    if (avx512 && !probabilities)
        return softmax_rows_u8_avx512(products, rows, cols, q_scales, scale, k_scales, bias, v_scales, u8, p_scales);
    softmax_rows_u8_portable(products, rows, cols, q_scales, scale, k_scales, bias, v_scales, u8, p_scales,
                             probabilities);
}

// Three passes a row: the maximum; the exponentials and their sum; the
// division by the sum, in place or as the probabilities are stored.
void softmax_rows_u8_from_scores(float* scores, int rows, int cols, const float* lane_maxima, const float* v_scales,
                                 std::uint8_t* u8, float* p_scales) {
    softmax_rows_u8_from_scores_avx512(scores, rows, cols, lane_maxima, v_scales, u8, p_scales);
}

void softmax_rows_f32_from_scores(float* scores, int rows, int cols, const float* lane_maxima, float* inverse_sums) {
    softmax_rows_f32_from_scores_avx512(scores, rows, cols, lane_maxima, inverse_sums);
}

void softmax_rows_bf16_from_scores(const float* scores, int rows, int cols, const float* lane_maxima,
                                   std::uint16_t* exponentials, float* inverse_sums) {
    softmax_rows_bf16_from_scores_avx512(scores, rows, cols, lane_maxima, exponentials, inverse_sums);
}

void softmax_rows(float* scores, int rows, int cols, const Activation& probabilities, const float* bias) {
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    if (avx512 && probabilities.type == Activation::Type::bf16)
        return softmax_rows_bf16_avx512(scores, rows, cols, static_cast<std::uint16_t*>(probabilities.data), bias);
    for (int r = 0; r < rows; ++r) {
        float* row = scores + std::int64_t(r) * cols;
        if (bias) add_into(row, cols, bias + std::int64_t(r) * cols);
        const float max = max_of(row, cols);
        const float inverse_sum =
            1.f / (probabilities.type == Activation::Type::bf16 ? exp_shifted_sum_for_bf16(row, cols, max)
                                                                : exp_shifted_sum(row, cols, max));
        if (probabilities.data == scores)
            scale_row(row, cols, inverse_sum);
        else
            store_row(row, cols, probabilities, r, cols, 0, inverse_sum);
    }
}

}  // namespace onevit
