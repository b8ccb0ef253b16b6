// int8 attention's two matmuls, q kᵀ (s8 · s8) and p v (u8 · s8), by an
// AVX-512 VNNI kernel of ours where the CPU has it. At attention's shapes (a
// task's ~100 query rows; K or N = head_dim = 64) oneDNN 2.6's matmuls pay
// a dispatch a call and stay short of the int8 peak; this kernel keeps a
// block of 6 rows × 64 columns in registers (ops/products_block.hpp), its
// operands in L1 (docs/performance.md, "Attention").
//
// vpdpbusd multiplies u8 by s8, 4 by 4: b is packed so that each column's 4
// values of k lie side by side, and for q kᵀ, q is read as u8 (q + 128, its
// sign bit flipped) and each key's 128 · Σ k subtracted, so the products are
// exactly the s8 ones, and their f32 values those oneDNN writes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/products_block.hpp"

namespace onevit {

// Whether this CPU (and its OS) runs the kernels below.
bool has_int8_products_kernel();

// Bytes of b packed for int8_products: n columns, k values each.
std::size_t packed_b_bytes(int n, int k);

// Packs keys, s8 [n][k] (k a multiple of 4) with rows `stride` bytes apart
// (a multiple of 4), as b = kᵀ, with the corrections for a = q + 128.
void pack_keys(const std::int8_t* keys, std::int64_t stride, int n, int k, void* packed);
// Packs values, s8 [k][n] (n a multiple of 16) with rows `stride` bytes
// apart, as b = v, for a = u8.
void pack_values(const std::int8_t* values, std::int64_t stride, int k, int n, void* packed);

// out = Σ_d a[i][d] · b[d][j], for i < rows, j < n, d < k (ops/products_block.hpp
// says where they go: f32, scaled scores as softmax_rows_u8 computes them
// without a bias, or bf16); a u8 rows `a_stride` apart.
void int8_products(const std::uint8_t* a, std::int64_t a_stride, int rows, const void* packed_b, int n, int k,
                   const ProductsOut& out);

// x + 128 for every s8 value, as u8: its sign bit flipped, in place.
void flip_sign_bits(std::int8_t* values, std::size_t n);
// The same from rows of n values `stride` bytes apart (qkv's q at int8) into
// dense u8 rows; where has_int8_products_kernel().
void copy_flipping_sign_bits(const std::int8_t* values, std::int64_t stride, int rows, int n, std::uint8_t* out);

}  // namespace onevit
