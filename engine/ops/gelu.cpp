#include "ops/gelu.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "ops/quantize.hpp"  // ONEVIT_VECTOR_CLONES

namespace onevit {

namespace {

// e^x for x in [-87, 88]: 2^k · e^r with k = round(x / ln2), |r| ≤ ln2 / 2,
// e^r by its Taylor polynomial to degree 6 (relative error < 2e-7 there).
inline float exp_of(float x) {
    constexpr float kLog2e = 1.44269504f, kLn2 = 0.693147181f, kMagic = 12582912.f;  // 1.5·2^23
    x = std::clamp(x, -87.f, 88.f);
    const float k = (x * kLog2e + kMagic) - kMagic;  // round to nearest
    const float r = x - k * kLn2;
    float p = 1.f / 720;
    p = p * r + 1.f / 120;
    p = p * r + 1.f / 24;
    p = p * r + 1.f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.f;
    p = p * r + 1.f;
    const std::int32_t bits = (static_cast<std::int32_t>(k) + 127) << 23;
    float two_to_k;
    std::memcpy(&two_to_k, &bits, sizeof two_to_k);
    return p * two_to_k;
}

// erf by Abramowitz & Stegun 7.1.26, odd in x.
inline float erf_of(float x) {
    const float a = std::abs(x);
    const float t = 1.f / (1.f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    const float y = 1.f - p * t * exp_of(-a * a);
    return std::copysign(y, x);
}

ONEVIT_VECTOR_CLONES
void gelu_erf_row(float* v, int n) {
    for (int i = 0; i < n; ++i) v[i] = 0.5f * v[i] * (1.f + erf_of(v[i] * 0.707106781f));
}

// tanh(u) = 1 − 2 / (e^{2u} + 1).
ONEVIT_VECTOR_CLONES
void gelu_tanh_row(float* v, int n) {
    for (int i = 0; i < n; ++i) {
        const float x = v[i];
        const float u = 0.797884561f * (x + 0.044715f * x * x * x);
        v[i] = 0.5f * x * (2.f - 2.f / (exp_of(2.f * u) + 1.f));
    }
}

// x · sigmoid(1.702 x)
ONEVIT_VECTOR_CLONES
void gelu_quick_row(float* v, int n) {
    for (int i = 0; i < n; ++i) v[i] = v[i] / (1.f + exp_of(-1.702f * v[i]));
}

}  // namespace

void apply_gelu(Gelu gelu, float* values, int n) {
    switch (gelu) {
        case Gelu::erf: return gelu_erf_row(values, n);
        case Gelu::tanh: return gelu_tanh_row(values, n);
        case Gelu::quick: return gelu_quick_row(values, n);
    }
}

}  // namespace onevit
