#include "ops/patch_extract.hpp"

#include <algorithm>
#include <cstring>

#include "ops/quantize.hpp"

namespace onevit {

// A grid row's patches at a time, each image row read once from start to end
// (the prefetchers follow one stream; a patch at a time read 3·P streams);
// f32 rows are cut straight into place, other types into rows of floats, then
// stored (converted) whole.
void extract_patch_rows(const PatchGrid& g, const float* images, Range rows, const Activation& all_rows,
                        float* converted) {
    const int P = g.patch, G = g.patches(), W = g.grid_width(), width = g.patch_dim();
    const std::size_t plane = std::size_t(g.image_height) * g.image_width;
    const bool f32 = all_rows.type == Activation::Type::f32;
    // 16 wide (most ViTs) in a copy of fixed size, which the compiler inlines.
    const auto copy_piece = [P](float* to, const float* from) {
        if (P == 16)
            std::memcpy(to, from, sizeof(float) * 16);
        else
            std::memcpy(to, from, sizeof(float) * P);
    };
    for (int row = rows.begin; row < rows.begin + rows.size;) {
        const int b = row / G, gy = (row % G) / W, gx = row % W;
        const int count = std::min(W - gx, rows.begin + rows.size - row);  // this grid row's patches in the tile
        float* first = f32 ? static_cast<float*>(all_rows.at(row, width)) : converted;
        for (int c = 0; c < g.channels; ++c)
            for (int y = 0; y < P; ++y) {
                const float* src = images + (std::size_t(b) * g.channels + c) * plane +
                                   (std::size_t(gy) * P + y) * g.image_width + std::size_t(gx) * P;
                float* dst = first + (c * P + y) * P;
                for (int k = 0; k < count; ++k) copy_piece(dst + std::size_t(k) * width, src + std::size_t(k) * P);
            }
        if (!f32)
            for (int k = 0; k < count; ++k)
                store_row(converted + std::size_t(k) * width, width, all_rows, row + k, width);
        row += count;
    }
}

}  // namespace onevit
