// Cuts NCHW images into flattened patches: one row of C·P·P values per patch,
// in (c, y, x) order — the order of a convolution weight's flattened kernel,
// so a patch row times the weight's rows is the convolution. Used where the
// patches themselves are normalised before the embedding (dual patch norm).
#pragma once

#include "executor.hpp"
#include "ops/patch_grid.hpp"

namespace onevit {

// images: batch × C × H × W; rows: (batch · patches) × patch_dim. Inside Executor::run.
void extract_patches(Executor& executor, const PatchGrid& grid, int batch, const float* images, float* rows);

}  // namespace onevit
