// The register-blocked AVX-512 kernel that attention's int8, bf16 and f32
// matmuls share (ops/int8_products.hpp, ops/bf16_products.hpp,
// ops/f32_products.hpp): out = a · b for a task's query rows, a read 4 bytes
// at a time (4 u8, 2 bf16, or 1 f32) and broadcast, b packed as [groups of 4
// bytes of k][columns, padded to 16][4 bytes], then a start value a column
// (int32, or f32 bits). A block of M rows × N vectors of 16 columns stays in
// M · N registers (6 × 4 = 24 of the 32) while k runs; the operands stay in
// L1 or L2. Dot is the instruction (vpdpbusd, vdpbf16ps, vfmadd231ps).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "ops/bf16_round_avx512.hpp"

namespace onevit {

// Where q kᵀ's products become the scores a softmax starts from: each times
// row_scales[i] · scale · column_scales[j] (either null: 1); and each row's 16
// lane maxima of them in lane_maxima[i][16].
struct ScaledScores {
    const float* row_scales;
    float scale;
    const float* column_scales;
    float* lane_maxima;
};

// Where the products go: f32 rows (or, with scaled, the scores); or bf16
// rows, each times row_scales[i] (null: 1) and rounded as store_row does.
// Rows `stride` elements apart.
struct ProductsOut {
    float* f32 = nullptr;
    std::uint16_t* bf16 = nullptr;
    std::int64_t stride = 0;
    const ScaledScores* scaled = nullptr;
    const float* row_scales = nullptr;
};

namespace products {

constexpr int kLanes = 16;                        // 32-bit lanes of a vector
constexpr int kRowsBlock = 6, kVectorsBlock = 4;  // 24 accumulators of the 32 registers

inline int padded(int n) { return (n + kLanes - 1) / kLanes * kLanes; }

// GCC 12 warns of the "undefined" vectors inside its own intrinsics (bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#define ONEVIT_AVX512BW __attribute__((target("avx512f,avx512bw")))

// 16 × 16 int32 transpose, rows in r (in place): after it r[c] holds column c.
ONEVIT_AVX512BW __attribute__((always_inline)) inline void transpose_16x16(__m512i* r) {
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

// b's groups from rows of n keys, `groups` int32 a row, rows `stride` int32
// apart: b = keysᵀ, its columns padded with zeros to a multiple of 16. The
// start values are the caller's.
ONEVIT_AVX512BW inline void transpose_keys(const std::int32_t* keys, std::int64_t stride, int n, int groups,
                                           std::int32_t* out) {
    const int columns = padded(n);
    for (int first = 0; first < columns; first += kLanes) {
        for (int g0 = 0; g0 < groups; g0 += kLanes) {
            const int width = groups - g0 < kLanes ? groups - g0 : kLanes;
            const __mmask16 in_row = static_cast<__mmask16>((1u << width) - 1);
            __m512i r[kLanes];  // 16 keys' groups g0 …
            for (int i = 0; i < kLanes; ++i)
                r[i] = first + i < n ? _mm512_maskz_loadu_epi32(in_row, keys + std::int64_t(first + i) * stride + g0)
                                     : _mm512_setzero_si512();
            transpose_16x16(r);
            for (int c = 0; c < width; ++c) _mm512_storeu_si512(out + std::int64_t(g0 + c) * columns + first, r[c]);
        }
    }
}

// One group of k: acc[m][v] += row m's 4 bytes (at[m]) · b's vector v; by
// a broadcast from memory inside the instruction where Dot has that form.
template <class Dot, int M, int N>
ONEVIT_AVX512BW __attribute__((always_inline)) inline void accumulate_group(__m512i (&acc)[M][N],
                                                                            const std::int32_t* b_group,
                                                                            const std::uint8_t* const* at) {
    __m512i b[N];
#pragma GCC unroll 8
    for (int v = 0; v < N; ++v) b[v] = _mm512_loadu_si512(b_group + kLanes * v);
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
        if constexpr (Dot::kBroadcastsFromMemory) {
#pragma GCC unroll 8
            for (int v = 0; v < N; ++v) Dot::accumulate_broadcast(acc[m][v], at[m], b[v]);
        } else {
            std::int32_t four;
            __builtin_memcpy(&four, at[m], sizeof four);
            const __m512i broadcast = _mm512_set1_epi32(four);
#pragma GCC unroll 8
            for (int v = 0; v < N; ++v) Dot::accumulate(acc[m][v], broadcast, b[v]);
        }
    }
}

// A block of M rows of a × N vectors of 16 columns, from column `first`: the
// products in M · N registers, started at the columns' start values. a's
// rows are k_bytes long, `a_stride` bytes apart; a row's last group, where
// k_bytes is not a multiple of 4, is read only as far as k_bytes.
enum class Kind { f32, scaled, bf16 };  // ProductsOut's three forms
inline Kind kind_of(const ProductsOut& out) { return out.scaled ? Kind::scaled : out.bf16 ? Kind::bf16 : Kind::f32; }

template <class Dot, Kind K, int M, int N>
ONEVIT_AVX512BW void block(const std::uint8_t* a, std::int64_t a_stride, const std::int32_t* packed, int columns,
                           int k_bytes, int first, int n, const ProductsOut& out, int row) {
    const int groups = (k_bytes + 3) / 4, whole = k_bytes / 4;
    const std::int32_t* starts = packed + std::int64_t(groups) * columns;
    __m512i acc[M][N];
#pragma GCC unroll 8
    for (int v = 0; v < N; ++v) {
        const __m512i start = _mm512_loadu_si512(starts + first + kLanes * v);
#pragma GCC unroll 8
        for (int m = 0; m < M; ++m) acc[m][v] = start;
    }
    for (int g = 0; g < whole; ++g) {
        const std::uint8_t* at[M];
#pragma GCC unroll 8
        for (int m = 0; m < M; ++m) at[m] = a + m * a_stride + 4 * g;
        accumulate_group<Dot, M, N>(acc, packed + std::int64_t(g) * columns + first, at);
    }
    if (whole < groups) {  // the tail's bytes, zeros after them
        std::int32_t four[M];
        const std::uint8_t* at[M];
        for (int m = 0; m < M; ++m) {
            std::uint32_t bytes = 0;
            for (int i = 0; i < k_bytes - 4 * whole; ++i)
                bytes |= std::uint32_t(a[m * a_stride + 4 * whole + i]) << 8 * i;
            four[m] = static_cast<std::int32_t>(bytes);
            at[m] = reinterpret_cast<const std::uint8_t*>(&four[m]);
        }
        accumulate_group<Dot, M, N>(acc, packed + std::int64_t(whole) * columns + first, at);
    }
    // out's fields in locals: the vector stores may alias any memory, which
    // would reload them after every store
    float* const f32 = out.f32;
    std::uint16_t* const bf16 = out.bf16;
    const std::int64_t stride = out.stride;
    const float* const row_scales = K == Kind::scaled ? out.scaled->row_scales : out.row_scales;
    const float scale = K == Kind::scaled ? out.scaled->scale : 1.f;
    const float* const column_scales = K == Kind::scaled ? out.scaled->column_scales : nullptr;
    float* const lane_maxima = K == Kind::scaled ? out.scaled->lane_maxima : nullptr;
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
        const std::int64_t at_row = std::int64_t(row + m) * stride;
        __m512 row_scale = _mm512_set1_ps(1.f), max = _mm512_setzero_ps();
        if constexpr (K == Kind::scaled) {
            row_scale = _mm512_set1_ps(row_scales ? row_scales[row + m] * scale : scale);
            max = _mm512_loadu_ps(lane_maxima + (row + m) * kLanes);
        } else if (row_scales) {
            row_scale = _mm512_set1_ps(row_scales[row + m]);
        }
#pragma GCC unroll 8
        for (int v = 0; v < N; ++v) {
            const int at = first + kLanes * v;
            const __mmask16 valid = at + kLanes <= n ? 0xffff : static_cast<__mmask16>((1u << (n - at)) - 1);
            __m512 x = Dot::to_float(acc[m][v]);
            if constexpr (K == Kind::scaled) {
                x = _mm512_mul_ps(x, column_scales
                                         ? _mm512_mul_ps(row_scale, _mm512_maskz_loadu_ps(valid, column_scales + at))
                                         : row_scale);
                max = _mm512_mask_max_ps(max, valid, max, x);
            } else if (row_scales) {
                x = _mm512_mul_ps(x, row_scale);
            }
            if constexpr (K == Kind::bf16)
                _mm512_mask_cvtepi32_storeu_epi16(bf16 + at_row + at, valid, bf16_bits(x));
            else
                _mm512_mask_storeu_ps(f32 + at_row + at, valid, x);
        }
        if constexpr (K == Kind::scaled) _mm512_storeu_ps(lane_maxima + (row + m) * kLanes, max);
    }
}

using Block = void (*)(const std::uint8_t*, std::int64_t, const std::int32_t*, int, int, int, int, const ProductsOut&,
                       int);
template <class Dot, Kind K, int M>
constexpr Block kBlocks[kVectorsBlock] = {block<Dot, K, M, 1>, block<Dot, K, M, 2>, block<Dot, K, M, 3>,
                                          block<Dot, K, M, 4>};
template <class Dot, Kind K>
constexpr const Block* kBlocksByRows[kRowsBlock] = {kBlocks<Dot, K, 1>, kBlocks<Dot, K, 2>, kBlocks<Dot, K, 3>,
                                                    kBlocks<Dot, K, 4>, kBlocks<Dot, K, 5>, kBlocks<Dot, K, 6>};
template <class Dot>
constexpr const Block* const* kBlocksByKind[3] = {kBlocksByRows<Dot, Kind::f32>, kBlocksByRows<Dot, Kind::scaled>,
                                                  kBlocksByRows<Dot, Kind::bf16>};

// out = a · b for `rows` rows of a and n columns of b, k_bytes of a row: the
// columns' vectors split into blocks of at most 4, as evenly as they go (13
// = 4 + 3 + 3 + 3), each run over the rows 6 at a time. Lane maxima, where
// out is scaled, start at −∞.
template <class Dot>
void run(const std::uint8_t* a, std::int64_t a_stride, int rows, const void* packed_b, int n, int k_bytes,
         const ProductsOut& out) {
    const int columns = padded(n), vectors = columns / kLanes;
    const int blocks = (vectors + kVectorsBlock - 1) / kVectorsBlock;
    const auto* packed = static_cast<const std::int32_t*>(packed_b);
    const Block* const* by_rows = kBlocksByKind<Dot>[static_cast<int>(kind_of(out))];
    if (out.scaled) std::fill_n(out.scaled->lane_maxima, std::int64_t(rows) * kLanes, -__builtin_inff());
    for (int row = 0; row < rows; row += kRowsBlock) {
        const int m = rows - row < kRowsBlock ? rows - row : kRowsBlock;
        for (int block = 0, vector = 0; block < blocks; ++block) {
            const int width = (vectors - vector + blocks - block - 1) / (blocks - block);
            by_rows[m - 1][width - 1](a + row * a_stride, a_stride, packed, columns, k_bytes, kLanes * vector, n, out,
                                      row);
            vector += width;
        }
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#undef ONEVIT_AVX512BW

}  // namespace products

}  // namespace onevit
