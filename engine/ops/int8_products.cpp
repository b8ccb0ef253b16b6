#include "ops/int8_products.hpp"

#include <immintrin.h>

#include <algorithm>

#include "ops/op.hpp"  // ceil_div
#include "ops/prefetch_rows.hpp"
#include "ops/products_block.hpp"

namespace onevit {

namespace {

using products::kLanes;
using products::padded;

// GCC 12 warns of the "undefined" vectors inside its own intrinsics (bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#define ONEVIT_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

int groups_of(int k) { return ceil_div(k, 4); }

// kᵀ as products_block's b (keys' 4-byte groups transposed), then each
// column's start value: −128 · Σ of its key's values.
ONEVIT_VNNI void pack_keys_vnni(const std::int8_t* keys, std::int64_t stride, int n, int k, void* packed) {
    const int columns = padded(n), groups = k / 4;
    auto* out = static_cast<std::int32_t*>(packed);
    products::transpose_keys(reinterpret_cast<const std::int32_t*>(keys), stride / 4, n, groups, out);
    std::int32_t* starts = out + std::size_t(groups) * columns;
    const __m512i ones = _mm512_set1_epi8(1);
    for (int first = 0; first < columns; first += kLanes) {
        __m512i sums = _mm512_setzero_si512();
        for (int g = 0; g < groups; ++g)  // Σ of each key's 4 values
            sums = _mm512_dpbusd_epi32(sums, ones, _mm512_loadu_si512(out + std::size_t(g) * columns + first));
        _mm512_storeu_si512(starts + first, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sums, 7)));
    }
}

// Rows 4g … 4g + 3 of values, 64 columns at a time: bytes interleaved 4 rows
// by 4 (within 128-bit lanes), then the lanes put back in column order.
ONEVIT_VNNI void pack_values_vnni(const std::int8_t* values, std::int64_t stride, int k, int n, void* packed) {
    const int groups = groups_of(k);
    auto* out = static_cast<std::int32_t*>(packed);
    for (int first = 0; first < n; first += 4 * kLanes) {
        const int vectors = std::min(4, (n - first) / kLanes);
        const __mmask64 in_row = vectors == 4 ? ~__mmask64(0) : (__mmask64(1) << (kLanes * vectors)) - 1;
        for (int g = 0; g < groups; ++g) {
            __m512i r[4];
            for (int b = 0; b < 4; ++b)
                r[b] = 4 * g + b < k ? _mm512_maskz_loadu_epi8(in_row, values + (4 * g + b) * stride + first)
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

ONEVIT_VNNI void copy_flipping_sign_bits_avx512(const std::int8_t* values, std::int64_t stride, int rows, int n,
                                                std::uint8_t* out) {
    const __m512i sign = _mm512_set1_epi8(-128);
    for (int r = 0; r < rows; ++r) {
        const std::int8_t* row = values + r * stride;
        prefetch_row_ahead(row, stride, std::size_t(n));
        for (int i = 0; i < n; i += 64) {
            const __mmask64 in_row = n - i >= 64 ? ~__mmask64(0) : (__mmask64(1) << (n - i)) - 1;
            _mm512_mask_storeu_epi8(out + std::int64_t(r) * n + i, in_row,
                                    _mm512_xor_si512(_mm512_maskz_loadu_epi8(in_row, row + i), sign));
        }
    }
}

// acc += the products of a's u8 and b's s8, 4 by 4 (vpdpbusd). As asm: GCC 12
// copies the intrinsic's accumulators between registers at every step, or
// keeps more than ~12 of them on the stack.
struct Vnni {
    static constexpr bool kBroadcastsFromMemory = false;  // its broadcast form reads the s8 operand
    __attribute__((target("avx512f"), always_inline)) static void accumulate(__m512i& acc, __m512i a, __m512i b) {
        asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    }
    __attribute__((target("avx512f"), always_inline)) static __m512 to_float(__m512i acc) {
        return _mm512_cvtepi32_ps(acc);
    }
};

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

void pack_keys(const std::int8_t* keys, std::int64_t stride, int n, int k, void* packed) {
    pack_keys_vnni(keys, stride, n, k, packed);
}
void pack_values(const std::int8_t* values, std::int64_t stride, int k, int n, void* packed) {
    pack_values_vnni(values, stride, k, n, packed);
}

void int8_products(const std::uint8_t* a, std::int64_t a_stride, int rows, const void* packed_b, int n, int k,
                   const ProductsOut& out) {
    products::run<Vnni>(a, a_stride, rows, packed_b, n, k, out);
}

void copy_flipping_sign_bits(const std::int8_t* values, std::int64_t stride, int rows, int n, std::uint8_t* out) {
    copy_flipping_sign_bits_avx512(values, stride, rows, n, out);
}

void flip_sign_bits(std::int8_t* values, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) values[i] = static_cast<std::int8_t>(values[i] ^ 0x80);
}

}  // namespace onevit
