#include "ops/patch_extract.hpp"

#include "ops/quantize.hpp"

namespace onevit {

void extract_patch_rows(const PatchGrid& g, const float* images, Range rows, const Activation& all_rows) {
    const int P = g.patch, G = g.patches(), width = g.patch_dim();
    const std::size_t plane = std::size_t(g.image_height) * g.image_width;
    for (int row = rows.begin; row < rows.begin + rows.size; ++row) {
        const int b = row / G, gy = (row % G) / g.grid_width(), gx = row % g.grid_width();
        int column = 0;
        for (int c = 0; c < g.channels; ++c) {
            const float* src = images + (std::size_t(b) * g.channels + c) * plane +
                               std::size_t(gy) * P * g.image_width + std::size_t(gx) * P;
            for (int y = 0; y < P; ++y, column += P)
                store_row(src + std::size_t(y) * g.image_width, P, all_rows, row, width, column);
        }
    }
}

void extract_patches(Executor& executor, const PatchGrid& g, int batch, const float* images, float* rows) {
    executor.parallel(batch * g.patches(), [&](int row) { extract_patch_rows(g, images, {row, 1}, Activation(rows)); });
}

}  // namespace onevit
