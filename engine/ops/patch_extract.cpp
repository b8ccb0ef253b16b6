#include "ops/patch_extract.hpp"

#include <cstring>

namespace onevit {

void extract_patches(Executor& executor, const PatchGrid& g, int batch, const float* images, float* rows) {
    const int P = g.patch, G = g.patches();
    const std::size_t plane = std::size_t(g.image_height) * g.image_width;
    executor.parallel(batch * G, [&](int row) {
        const int b = row / G, gy = (row % G) / g.grid_width(), gx = row % g.grid_width();
        float* dst = rows + std::size_t(row) * g.patch_dim();
        for (int c = 0; c < g.channels; ++c) {
            const float* src = images + (std::size_t(b) * g.channels + c) * plane +
                               std::size_t(gy) * P * g.image_width + std::size_t(gx) * P;
            for (int y = 0; y < P; ++y, dst += P) std::memcpy(dst, src + std::size_t(y) * g.image_width, sizeof(float) * P);
        }
    });
}

}  // namespace onevit
