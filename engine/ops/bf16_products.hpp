// bf16 attention's two matmuls, q kᵀ and p v (bf16 · bf16, f32 sums), by an
// AVX512-BF16 kernel of ours where the CPU has it (vdpbf16ps; elsewhere
// oneDNN's). At attention's shapes (a task's ~100 query rows; K or N =
// head_dim = 64) oneDNN 2.6's matmuls pay a dispatch a call, and its q kᵀ
// writes scores that the softmax then reads once more for their maximum; this
// kernel keeps a block of 6 rows × 64 columns in registers
// (ops/products_block.hpp) and writes the scaled scores with each row's lane
// maxima, and p v straight into the bf16 output (docs/performance.md,
// "Attention"). Its sums add the products 2 by 2, in k's order: not
// oneDNN's order, so the scores differ from its by f32 roundings.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/products_block.hpp"

namespace onevit {

// Whether this CPU (and its OS) runs the kernels below.
bool has_bf16_products_kernel();

// Bytes of b packed for bf16_products: n columns, k values each.
std::size_t packed_bf16_b_bytes(int n, int k);

// Packs keys, bf16 [n][k] (k even, stride even: rows `stride` elements apart),
// as b = kᵀ.
void pack_bf16_keys(const std::uint16_t* keys, std::int64_t stride, int n, int k, void* packed);
// Packs values, bf16 [k][n] (n a multiple of 16; rows `stride` apart), as b = v.
void pack_bf16_values(const std::uint16_t* values, std::int64_t stride, int k, int n, void* packed);

// out = Σ_d a[i][d] · b[d][j], for i < rows, j < n, d < k, where out says
// (ops/products_block.hpp); a bf16 rows `a_stride` elements apart.
void bf16_products(const std::uint16_t* a, std::int64_t a_stride, int rows, const void* packed_b, int n, int k,
                   const ProductsOut& out);

}  // namespace onevit
