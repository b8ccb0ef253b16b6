// LayerNorm rows into s8 (with row scales) or bf16 by AVX-512, four rows at a
// time: bit for bit normalize_row's floats stored by store_row, whose loops
// spend most of a row waiting on their sums (each lane_sum ends in 16 additions
// one after another). Here four rows' passes interleave, and their sums' last
// additions run side by side in one vector (docs/performance.md, "LayerNorm
// rows by AVX-512, any width").
#pragma once

#include <cstdint>

#include "ops/activation.hpp"
#include "ops/norm.hpp"

namespace onevit {

// The rows it interleaves: its scratch holds this many rows.
constexpr int kLayerNormRowsAtOnce = 4;

// Whether layer_norm_rows_avx512 runs here for these rows: a LayerNorm of a
// multiple of 16 wide into s8 or bf16, where the CPU rounds to bf16 itself
// (AVX512-BF16).
bool layer_norm_rows_avx512_runs(const NormParams& params, Activation::Type dst);

// dst rows [first, first + count) = LayerNorm of the same rows of src (dense,
// params.dim floats each); scratch: kLayerNormRowsAtOnce · params.dim floats.
void layer_norm_rows_avx512(const NormParams& params, const float* src, int first, int count, const Activation& dst,
                            float* scratch);

}  // namespace onevit
