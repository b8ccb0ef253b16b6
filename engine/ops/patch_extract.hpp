// Cuts NCHW images into flattened patches: one row of C·P·P values per patch,
// in (c, y, x) order — the order of a convolution weight's flattened kernel,
// so a patch row times the weight's rows is the convolution (ops/patch_embed).
#pragma once

#include "ops/activation.hpp"
#include "ops/op.hpp"
#include "ops/patch_grid.hpp"

namespace onevit {

// The rows [rows.begin, rows.begin + rows.size) of all_rows only (row = image
// · patches + patch), written as all_rows' type: f32, or bf16 / s8 through
// `converted`, grid_width() rows of patch_dim floats.
void extract_patch_rows(const PatchGrid& grid, const float* images, Range rows, const Activation& all_rows,
                        float* converted);

}  // namespace onevit
