// f32 attention's two matmuls, q kᵀ and p v, by the AVX-512 kernel of
// ops/products_block.hpp where the CPU has AVX-512 (elsewhere oneDNN's): each
// f32 of a is a 4-byte group, broadcast, and Dot is an FMA (vfmadd231ps). At
// attention's shapes (a task's ~100 query rows; K or N = head_dim = 64)
// oneDNN 2.6's matmuls pay a dispatch a call and read dense copies of q, k
// and v; this kernel reads them from qkv's rows, keeps a block of 6 rows × 64
// columns in registers and writes the scaled scores with each row's lane
// maxima (docs/performance.md, "f32 attention by our kernel"). Its sums add
// the products one by one in k's order: not oneDNN's order, so the scores
// differ from its by f32 roundings.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/products_block.hpp"

namespace onevit {

// Whether this CPU (and its OS) runs the kernels below.
bool has_f32_products_kernel();

// Bytes of b packed for f32_products: n columns, k values each.
std::size_t packed_f32_b_bytes(int n, int k);

// Packs keys, f32 [n][k] (rows `stride` elements apart), as b = kᵀ.
void pack_f32_keys(const float* keys, std::int64_t stride, int n, int k, void* packed);
// Packs values, f32 [k][n] (n a multiple of 16; rows `stride` apart), as b = v.
void pack_f32_values(const float* values, std::int64_t stride, int k, int n, void* packed);

// out = Σ_d a[i][d] · b[d][j], for i < rows, j < n, d < k, where out says
// (ops/products_block.hpp); a f32 rows `a_stride` elements apart.
void f32_products(const float* a, std::int64_t a_stride, int rows, const void* packed_b, int n, int k,
                  const ProductsOut& out);

}  // namespace onevit
