#include "ops/rope.hpp"

#include "ops/quantize.hpp"  // ONEVIT_VECTOR_CLONES

namespace onevit {

namespace {

ONEVIT_VECTOR_CLONES
void rotate_interleaved(float* x, const float* cos, const float* sin, int n) {
    for (int i = 0; i + 1 < n; i += 2) {
        const float a = x[i], b = x[i + 1];
        x[i] = a * cos[i] - b * sin[i];
        x[i + 1] = b * cos[i + 1] + a * sin[i + 1];
    }
}

ONEVIT_VECTOR_CLONES
void rotate_half(float* x, const float* cos, const float* sin, int n) {
    const int h = n / 2;
    for (int i = 0; i < h; ++i) {
        const float a = x[i], b = x[i + h];
        x[i] = a * cos[i] - b * sin[i];
        x[i + h] = b * cos[i + h] + a * sin[i + h];
    }
}

}  // namespace

void rotate_row(Rope layout, float* x, const float* cos, const float* sin, int n) {
    if (layout == Rope::interleaved) rotate_interleaved(x, cos, sin, n);
    if (layout == Rope::half) rotate_half(x, cos, sin, n);
}

}  // namespace onevit
