#include "ops/patch_extract.hpp"

#include <cstring>

#include "ops/quantize.hpp"

namespace onevit {

// f32 rows are cut straight into place; other types into a row of floats,
// then stored (converted) whole.
void extract_patch_rows(const PatchGrid& g, const float* images, Range rows, const Activation& all_rows,
                        float* converted) {
    const int P = g.patch, G = g.patches(), width = g.patch_dim();
    const std::size_t plane = std::size_t(g.image_height) * g.image_width;
    const bool f32 = all_rows.type == Activation::Type::f32;
    for (int row = rows.begin; row < rows.begin + rows.size; ++row) {
        const int b = row / G, gy = (row % G) / g.grid_width(), gx = row % g.grid_width();
        float* dst = f32 ? static_cast<float*>(all_rows.at(row, width)) : converted;
        for (int c = 0; c < g.channels; ++c) {
            const float* src = images + (std::size_t(b) * g.channels + c) * plane +
                               std::size_t(gy) * P * g.image_width + std::size_t(gx) * P;
            for (int y = 0; y < P; ++y, dst += P)
                std::memcpy(dst, src + std::size_t(y) * g.image_width, sizeof(float) * P);
        }
        if (!f32) store_row(converted, width, all_rows, row, width);
    }
}

}  // namespace onevit
