#include "ops/int8_products.hpp"

#include <immintrin.h>

#include <algorithm>

#include "ops/op.hpp"  // ceil_div

namespace onevit {

namespace {

constexpr int kLanes = 16;  // int32 lanes of a vector

// GCC 12 warns of the "undefined" vectors inside its own intrinsics (bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#define ONEVIT_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

// 16 × 16 int32 transpose, rows in r (in place): after it r[c] holds column c.
ONEVIT_VNNI __attribute__((always_inline)) inline void transpose_16x16(__m512i* r) {
    __m512i t[kLanes], u[kLanes];
    for (int i = 0; i < kLanes; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    // u[4b + c], 128-bit lane L: column 4L + c of rows 4b … 4b + 3
    for (int b = 0; b < kLanes; b += 4) {
        u[b] = _mm512_unpacklo_epi64(t[b], t[b + 2]);
        u[b + 1] = _mm512_unpackhi_epi64(t[b], t[b + 2]);
        u[b + 2] = _mm512_unpacklo_epi64(t[b + 1], t[b + 3]);
        u[b + 3] = _mm512_unpackhi_epi64(t[b + 1], t[b + 3]);
    }
    for (int c = 0; c < 4; ++c) {
        const __m512i even_low = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);  // lanes 0, 2 of each
        const __m512i even_high = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);
        const __m512i odd_low = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xdd);  // lanes 1, 3 of each
        const __m512i odd_high = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_i32x4(even_low, even_high, 0x88);
        r[8 + c] = _mm512_shuffle_i32x4(even_low, even_high, 0xdd);
        r[4 + c] = _mm512_shuffle_i32x4(odd_low, odd_high, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(odd_low, odd_high, 0xdd);
    }
}

int padded(int n) { return ceil_div(n, kLanes) * kLanes; }
int groups_of(int k) { return ceil_div(k, 4); }

// b's layout: [groups of 4 of k][columns, padded to 16][4 bytes], then an
// int32 correction a column.
ONEVIT_VNNI void pack_keys_vnni(const std::int8_t* keys, int n, int k, void* packed) {
    const int columns = padded(n), groups = k / 4;
    auto* out = static_cast<std::int32_t*>(packed);
    std::int32_t* corrections = out + std::size_t(groups) * columns;
    const __m512i ones = _mm512_set1_epi8(1);
    for (int first = 0; first < columns; first += kLanes) {
        __m512i sums = _mm512_setzero_si512();
        for (int g0 = 0; g0 < groups; g0 += kLanes) {
            const int width = std::min(kLanes, groups - g0);
            const __mmask16 in_row = static_cast<__mmask16>((1u << width) - 1);
            __m512i r[kLanes];  // 16 keys' groups g0 …
            for (int i = 0; i < kLanes; ++i)
                r[i] = first + i < n ? _mm512_maskz_loadu_epi32(in_row, keys + std::size_t(first + i) * k + 4 * g0)
                                     : _mm512_setzero_si512();
            transpose_16x16(r);
            for (int c = 0; c < width; ++c) {
                _mm512_storeu_si512(out + std::size_t(g0 + c) * columns + first, r[c]);
                sums = _mm512_dpbusd_epi32(sums, ones, r[c]);  // Σ of each key's 4 values
            }
        }
        _mm512_storeu_si512(corrections + first, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sums, 7)));
    }
}

// Rows 4g … 4g + 3 of values, 64 columns at a time: bytes interleaved 4 rows
// by 4 (within 128-bit lanes), then the lanes put back in column order.
ONEVIT_VNNI void pack_values_vnni(const std::int8_t* values, int k, int n, void* packed) {
    const int groups = groups_of(k);
    auto* out = static_cast<std::int32_t*>(packed);
    for (int first = 0; first < n; first += 4 * kLanes) {
        const int vectors = std::min(4, (n - first) / kLanes);
        const __mmask64 in_row = vectors == 4 ? ~__mmask64(0) : (__mmask64(1) << (kLanes * vectors)) - 1;
        for (int g = 0; g < groups; ++g) {
            __m512i r[4];
            for (int b = 0; b < 4; ++b)
                r[b] = 4 * g + b < k ? _mm512_maskz_loadu_epi8(in_row, values + std::size_t(4 * g + b) * n + first)
                                     : _mm512_setzero_si512();
            const __m512i low01 = _mm512_unpacklo_epi8(r[0], r[1]), high01 = _mm512_unpackhi_epi8(r[0], r[1]);
            const __m512i low23 = _mm512_unpacklo_epi8(r[2], r[3]), high23 = _mm512_unpackhi_epi8(r[2], r[3]);
            // x[c], 128-bit lane L: columns 16L + 4c … 16L + 4c + 3, 4 rows each
            const __m512i x0 = _mm512_unpacklo_epi16(low01, low23), x1 = _mm512_unpackhi_epi16(low01, low23);
            const __m512i x2 = _mm512_unpacklo_epi16(high01, high23), x3 = _mm512_unpackhi_epi16(high01, high23);
            const __m512i y0 = _mm512_shuffle_i32x4(x0, x1, 0x44), y1 = _mm512_shuffle_i32x4(x0, x1, 0xee);
            const __m512i y2 = _mm512_shuffle_i32x4(x2, x3, 0x44), y3 = _mm512_shuffle_i32x4(x2, x3, 0xee);
            const __m512i columns[4] = {_mm512_shuffle_i32x4(y0, y2, 0x88), _mm512_shuffle_i32x4(y0, y2, 0xdd),
                                        _mm512_shuffle_i32x4(y1, y3, 0x88), _mm512_shuffle_i32x4(y1, y3, 0xdd)};
            for (int v = 0; v < vectors; ++v)
                _mm512_storeu_si512(out + std::size_t(g) * n + first + kLanes * v, columns[v]);
        }
    }
    std::fill_n(out + std::size_t(groups) * n, n, 0);  // no corrections: a is u8
}

// acc += the products of a's u8 and b's s8, 4 by 4 (vpdpbusd). As asm: GCC 12
// copies the intrinsic's accumulators between registers at every step, or
// keeps more than ~12 of them on the stack.
ONEVIT_VNNI __attribute__((always_inline)) inline void accumulate(__m512i& acc, __m512i a, __m512i b) {
    asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
}

// A block of M rows of a × N vectors of 16 columns: the products in M · N
// registers, started at the columns' corrections.
template <int M, int N>
ONEVIT_VNNI void products_block(const std::uint8_t* a, std::int64_t a_stride, const std::int32_t* packed, int columns,
                                int groups, int first, int n, float* out, std::int64_t out_stride,
                                const ScaledScores* scaled, int row) {
    const std::int32_t* corrections = packed + std::size_t(groups) * columns;
    __m512i acc[M][N];
#pragma GCC unroll 8
    for (int v = 0; v < N; ++v) {
        const __m512i start = _mm512_loadu_si512(corrections + first + kLanes * v);
#pragma GCC unroll 8
        for (int m = 0; m < M; ++m) acc[m][v] = start;
    }
    for (int g = 0; g < groups; ++g) {
        __m512i b[N];
#pragma GCC unroll 8
        for (int v = 0; v < N; ++v) b[v] = _mm512_loadu_si512(packed + std::size_t(g) * columns + first + kLanes * v);
#pragma GCC unroll 8
        for (int m = 0; m < M; ++m) {
            std::int32_t four;
            __builtin_memcpy(&four, a + m * a_stride + 4 * g, sizeof four);
            const __m512i broadcast = _mm512_set1_epi32(four);
#pragma GCC unroll 8
            for (int v = 0; v < N; ++v) accumulate(acc[m][v], broadcast, b[v]);
        }
    }
    if (!scaled) {
#pragma GCC unroll 8
        for (int v = 0; v < N; ++v) {
            const int at = first + kLanes * v;
            const __mmask16 valid = at + kLanes <= n ? 0xffff : static_cast<__mmask16>((1u << (n - at)) - 1);
#pragma GCC unroll 8
            for (int m = 0; m < M; ++m)
                _mm512_mask_storeu_ps(out + m * out_stride + at, valid, _mm512_cvtepi32_ps(acc[m][v]));
        }
        return;
    }
    // products · (row scale · column scale), as softmax_rows_u8 scales them
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
        const __m512 row_scale = _mm512_set1_ps(scaled->row_scales[row + m] * scaled->scale);
        float* maxima = scaled->lane_maxima + (row + m) * kLanes;
        __m512 max = _mm512_loadu_ps(maxima);
#pragma GCC unroll 8
        for (int v = 0; v < N; ++v) {
            const int at = first + kLanes * v;
            const __mmask16 valid = at + kLanes <= n ? 0xffff : static_cast<__mmask16>((1u << (n - at)) - 1);
            const __m512 x =
                _mm512_mul_ps(_mm512_cvtepi32_ps(acc[m][v]),
                              _mm512_mul_ps(row_scale, _mm512_maskz_loadu_ps(valid, scaled->column_scales + at)));
            _mm512_mask_storeu_ps(out + m * out_stride + at, valid, x);
            max = _mm512_mask_max_ps(max, valid, max, x);
        }
        _mm512_storeu_ps(maxima, max);
    }
}

constexpr int kRowsBlock = 6, kVectorsBlock = 4;  // 24 accumulators of the 32 registers
using Block = void (*)(const std::uint8_t*, std::int64_t, const std::int32_t*, int, int, int, int, float*, std::int64_t,
                       const ScaledScores*, int);
template <int M>
constexpr Block kBlocks[kVectorsBlock] = {products_block<M, 1>, products_block<M, 2>, products_block<M, 3>,
                                          products_block<M, 4>};
constexpr const Block* kBlocksByRows[kRowsBlock] = {kBlocks<1>, kBlocks<2>, kBlocks<3>,
                                                    kBlocks<4>, kBlocks<5>, kBlocks<6>};

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#undef ONEVIT_VNNI

}  // namespace

bool has_int8_products_kernel() {
    static const bool has =
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
    return has;
}

std::size_t packed_b_bytes(int n, int k) { return sizeof(std::int32_t) * std::size_t(padded(n)) * (groups_of(k) + 1); }

void pack_keys(const std::int8_t* keys, int n, int k, void* packed) { pack_keys_vnni(keys, n, k, packed); }
void pack_values(const std::int8_t* values, int k, int n, void* packed) { pack_values_vnni(values, k, n, packed); }

// The columns' vectors split into blocks of at most 4, as evenly as they go
// (13 = 4 + 3 + 3 + 3), each run over the rows 6 at a time.
void int8_products(const std::uint8_t* a, std::int64_t a_stride, int rows, const void* packed_b, int n, int k,
                   float* out, std::int64_t out_stride, const ScaledScores* scaled) {
    const int columns = padded(n), vectors = columns / kLanes, groups = groups_of(k);
    const int blocks = ceil_div(vectors, kVectorsBlock);
    const auto* packed = static_cast<const std::int32_t*>(packed_b);
    if (scaled) std::fill_n(scaled->lane_maxima, std::size_t(rows) * kLanes, -__builtin_inff());
    for (int row = 0; row < rows; row += kRowsBlock) {
        const int m = std::min(kRowsBlock, rows - row);
        for (int block = 0, vector = 0; block < blocks; ++block) {
            const int width = ceil_div(vectors - vector, blocks - block);
            kBlocksByRows[m - 1][width - 1](a + row * a_stride, a_stride, packed, columns, groups, kLanes * vector, n,
                                            out + row * out_stride, out_stride, scaled, row);
            vector += width;
        }
    }
}

void flip_sign_bits(std::int8_t* values, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) values[i] = static_cast<std::int8_t>(values[i] ^ 0x80);
}

}  // namespace onevit
