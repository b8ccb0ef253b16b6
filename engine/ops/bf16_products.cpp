#include "ops/bf16_products.hpp"

#include <immintrin.h>

#include <algorithm>

#include "ops/op.hpp"  // ceil_div
#include "ops/products_block.hpp"

namespace onevit {

namespace {

using products::kLanes;
using products::padded;

int pairs_of(int k) { return ceil_div(k, 2); }

// GCC 12 warns of the "undefined" vectors inside its own intrinsics (bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// Rows 2g and 2g + 1 of values, 32 columns at a time: interleaved 2 by 2
// (within 128-bit lanes), then the lanes put back in column order.
__attribute__((target("avx512f,avx512bw"))) void pack_values_avx512(const std::uint16_t* values, std::int64_t stride,
                                                                    int k, int n, std::int32_t* out) {
    const __m512i first_half = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    const __m512i second_half = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    for (int first = 0; first < n; first += 2 * kLanes) {
        const bool two = n - first >= 2 * kLanes;
        const __mmask32 in_row = two ? ~__mmask32(0) : (__mmask32(1) << kLanes) - 1;
        for (int g = 0; g < pairs_of(k); ++g) {
            const __m512i even = _mm512_maskz_loadu_epi16(in_row, values + std::int64_t(2 * g) * stride + first);
            const __m512i odd =
                2 * g + 1 < k ? _mm512_maskz_loadu_epi16(in_row, values + std::int64_t(2 * g + 1) * stride + first)
                              : _mm512_setzero_si512();
            // 128-bit lane L: low, columns 8L … 8L + 3; high, 8L + 4 … 8L + 7
            const __m512i low = _mm512_unpacklo_epi16(even, odd), high = _mm512_unpackhi_epi16(even, odd);
            std::int32_t* at = out + std::size_t(g) * n + first;
            _mm512_storeu_si512(at, _mm512_permutex2var_epi64(low, first_half, high));
            if (two) _mm512_storeu_si512(at + kLanes, _mm512_permutex2var_epi64(low, second_half, high));
        }
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// acc += a's bf16 pairs · b's, as f32 (vdpbf16ps), a's pair broadcast from
// memory by the instruction itself. As asm, as ops/int8_products' vpdpbusd:
// GCC 12 copies the intrinsic's accumulators at every step.
struct Bf16Dot {
    static constexpr bool kBroadcastsFromMemory = true;
    __attribute__((target("avx512f"), always_inline)) static void accumulate_broadcast(__m512i& acc,
                                                                                       const std::uint8_t* pair,
                                                                                       __m512i b) {
        asm("vdpbf16ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(b), "m"(*reinterpret_cast<const std::int32_t*>(pair)));
    }
    __attribute__((target("avx512f"), always_inline)) static __m512 to_float(__m512i acc) {
        return _mm512_castsi512_ps(acc);
    }
};

}  // namespace

bool has_bf16_products_kernel() {
    static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
    return has;
}

std::size_t packed_bf16_b_bytes(int n, int k) {
    return sizeof(std::int32_t) * std::size_t(padded(n)) * (pairs_of(k) + 1);
}

// The start values: 0.f, in each column.
void pack_bf16_keys(const std::uint16_t* keys, std::int64_t stride, int n, int k, void* packed) {
    auto* out = static_cast<std::int32_t*>(packed);
    products::transpose_keys(reinterpret_cast<const std::int32_t*>(keys), stride / 2, n, k / 2, out);
    std::fill_n(out + std::size_t(k / 2) * padded(n), padded(n), 0);
}

void pack_bf16_values(const std::uint16_t* values, std::int64_t stride, int k, int n, void* packed) {
    auto* out = static_cast<std::int32_t*>(packed);
    pack_values_avx512(values, stride, k, n, out);
    std::fill_n(out + std::size_t(pairs_of(k)) * n, n, 0);
}

void bf16_products(const std::uint16_t* a, std::int64_t a_stride, int rows, const void* packed_b, int n, int k,
                   const ProductsOut& out) {
    products::run<Bf16Dot>(reinterpret_cast<const std::uint8_t*>(a), a_stride * 2, rows, packed_b, n, 2 * k, out);
}

}  // namespace onevit
