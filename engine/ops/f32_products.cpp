#include "ops/f32_products.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "ops/prefetch_rows.hpp"
#include "ops/products_block.hpp"

namespace onevit {

namespace {

using products::padded;

// acc += a's f32 (broadcast) · b's, fused. As asm, as ops/int8_products'
// vpdpbusd: the accumulators stay integer vectors in the shared block. The
// broadcast is its own load (vpbroadcastd), once a row and group, rather than
// inside each of the row's 4 FMAs (docs/performance.md, "f32 attention by our
// kernel").
struct F32Fma {
    static constexpr bool kBroadcastsFromMemory = false;
    __attribute__((target("avx512f"), always_inline)) static void accumulate(__m512i& acc, __m512i a, __m512i b) {
        asm("vfmadd231ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    }
    __attribute__((target("avx512f"), always_inline)) static __m512 to_float(__m512i acc) {
        return _mm512_castsi512_ps(acc);
    }
};

}  // namespace

bool has_f32_products_kernel() {
    static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    return has;
}

std::size_t packed_f32_b_bytes(int n, int k) { return sizeof(float) * std::size_t(padded(n)) * (k + 1); }

// The start values: 0.f, in each column.
void pack_f32_keys(const float* keys, std::int64_t stride, int n, int k, void* packed) {
    auto* out = static_cast<std::int32_t*>(packed);
    products::transpose_keys(reinterpret_cast<const std::int32_t*>(keys), stride, n, k, out);
    std::fill_n(out + std::size_t(k) * padded(n), padded(n), 0);
}

// A group is one f32: b's rows are v's rows as they are.
void pack_f32_values(const float* values, std::int64_t stride, int k, int n, void* packed) {
    auto* out = static_cast<float*>(packed);
    for (int g = 0; g < k; ++g) {
        prefetch_row_ahead(values + g * stride, stride * std::int64_t(sizeof(float)), sizeof(float) * n);
        std::memcpy(out + std::size_t(g) * n, values + g * stride, sizeof(float) * n);
    }
    std::fill_n(out + std::size_t(k) * n, n, 0.f);
}

void f32_products(const float* a, std::int64_t a_stride, int rows, const void* packed_b, int n, int k,
                  const ProductsOut& out) {
    products::run<F32Fma>(reinterpret_cast<const std::uint8_t*>(a), a_stride * 4, rows, packed_b, n, 4 * k, out);
}

}  // namespace onevit
