#include "ops/gelu.hpp"

#include "ops/quantize.hpp"  // ONEVIT_VECTOR_CLONES
#include "ops/vector_math.hpp"

namespace onevit {

namespace {

ONEVIT_VECTOR_CLONES
void gelu_erf_row(float* v, int n, float scale, const float* bias) {
    for (int i = 0; i < n; ++i) {
        const float x = v[i] * scale + bias[i];
        v[i] = 0.5f * x * (1.f + erf_of(x * 0.707106781f));
    }
}

// tanh(u) = 1 − 2 / (e^{2u} + 1).
ONEVIT_VECTOR_CLONES
void gelu_tanh_row(float* v, int n, float scale, const float* bias) {
    for (int i = 0; i < n; ++i) {
        const float x = v[i] * scale + bias[i];
        const float u = 0.797884561f * (x + 0.044715f * x * x * x);
        v[i] = 0.5f * x * (2.f - 2.f / (exp_of(2.f * u) + 1.f));
    }
}

// x · sigmoid(1.702 x)
ONEVIT_VECTOR_CLONES
void gelu_quick_row(float* v, int n, float scale, const float* bias) {
    for (int i = 0; i < n; ++i) {
        const float x = v[i] * scale + bias[i];
        v[i] = x / (1.f + exp_of(-1.702f * x));
    }
}

}  // namespace

void apply_gelu(Gelu gelu, float* values, int n, float scale, const float* bias) {
    switch (gelu) {
        case Gelu::erf:
            return gelu_erf_row(values, n, scale, bias);
        case Gelu::tanh:
            return gelu_tanh_row(values, n, scale, bias);
        case Gelu::quick:
            return gelu_quick_row(values, n, scale, bias);
    }
}

}  // namespace onevit
