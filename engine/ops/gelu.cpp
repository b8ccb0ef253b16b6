#include "ops/gelu.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "ops/quantize.hpp"  // ONEVIT_VECTOR_CLONES
#include "ops/vector_math.hpp"

namespace onevit {

namespace {

// gelu(x) = x·Φ(x) = max(x, 0) − h·erfc(√2·h) with h = |x| / 2 (Φ(x) = erfc(−x/√2) / 2),
// erfc(a) = 1 / p(a)^16 by Abramowitz & Stegun 7.1.28, p of degree 6 (its
// error ≤ 3e-7), here with the coefficients times 2^{k/2} so that p takes h.
// No exp, and no cancellation near 0 (which 1 − 1/p^16 would have). gelu(±∞)
// is NaN (∞/∞), as a NaN is.
inline float gelu_erf(float x) {
    const float h = 0.5f * std::abs(x);
    float p = 0.0003445104f;
    p = p * h + 0.00156450034f;
    p = p * h + 0.0006080572f;
    p = p * h + 0.0262210106f;
    p = p * h + 0.0845640246f;
    p = p * h + 0.0997346939f;
    p = p * h + 1.f;
    p = p * p;  // p^16 by four squarings
    p = p * p;
    p = p * p;
    p = p * p;
    return std::max(x, 0.f) - h / p;
}

// tanh(u) = 1 − 2 / (e^{2u} + 1).
inline float gelu_tanh(float x) {
    const float u = 0.797884561f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (2.f - 2.f / (exp_of(2.f * u) + 1.f));
}

// x · sigmoid(1.702 x)
inline float gelu_quick(float x) { return x / (1.f + exp_of(-1.702f * x)); }

// |x| orders as its bits with the sign cleared (quantize.cpp's max_abs_of).
inline std::uint32_t abs_bits(float x) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    return bits & 0x7fffffffu;
}

template <class F>
inline float gelu_in_place(float* v, int n, float scale, const float* bias, F gelu) {
    std::uint32_t max_bits = 0;
    for (int i = 0; i < n; ++i) {
        v[i] = gelu(v[i] * scale + bias[i]);
        max_bits = std::max(max_bits, abs_bits(v[i]));
    }
    float max_abs;
    std::memcpy(&max_abs, &max_bits, sizeof max_abs);
    return max_abs;
}

template <class F>
inline void gelu_into(const float* __restrict v, int n, float scale, const float* bias, float* __restrict out, F gelu) {
    for (int i = 0; i < n; ++i) out[i] = gelu(v[i] * scale + bias[i]);
}

// Each loop compiled per target (ONEVIT_VECTOR_CLONES), its GELU inlined.
ONEVIT_VECTOR_CLONES
float gelu_erf_row(float* v, int n, float scale, const float* bias) {
    return gelu_in_place(v, n, scale, bias, gelu_erf);
}
ONEVIT_VECTOR_CLONES
float gelu_tanh_row(float* v, int n, float scale, const float* bias) {
    return gelu_in_place(v, n, scale, bias, gelu_tanh);
}
ONEVIT_VECTOR_CLONES
float gelu_quick_row(float* v, int n, float scale, const float* bias) {
    return gelu_in_place(v, n, scale, bias, gelu_quick);
}

ONEVIT_VECTOR_CLONES
void gelu_erf_row_into(const float* v, int n, float scale, const float* bias, float* out) {
    gelu_into(v, n, scale, bias, out, gelu_erf);
}
ONEVIT_VECTOR_CLONES
void gelu_tanh_row_into(const float* v, int n, float scale, const float* bias, float* out) {
    gelu_into(v, n, scale, bias, out, gelu_tanh);
}
ONEVIT_VECTOR_CLONES
void gelu_quick_row_into(const float* v, int n, float scale, const float* bias, float* out) {
    gelu_into(v, n, scale, bias, out, gelu_quick);
}

// 32 values a step: the GELUs into an array of floats, then rounded to bf16
// by the CPU's own instruction (vcvtne2ps2bf16), the tail under a mask. Not
// store_bf16_by_cpu (ops/bf16_store.hpp), which takes vectors: through a
// lambda of one float a value GCC 12 computed some GELUs differently
// (DeiT-tiny's bf16 logits changed), so this loop stays.
template <class F>
ONEVIT_BF16_TARGET inline void gelu_bf16_avx512(const float* v, int n, float scale, const float* bias,
                                                std::uint16_t* out, F gelu) {
    for (int i = 0; i < n; i += 32) {
        const int count = std::min(32, n - i);
        alignas(64) float g[32] = {};
        for (int k = 0; k < count; ++k) g[k] = gelu(v[i + k] * scale + bias[i + k]);
        const __m512bh pair = _mm512_cvtne2ps_pbh(_mm512_load_ps(g + 16), _mm512_load_ps(g));
        _mm512_mask_storeu_epi16(out + i, _cvtu32_mask32(count == 32 ? ~0u : (1u << count) - 1), __m512i(pair));
    }
}

ONEVIT_BF16_TARGET void gelu_erf_bf16_row(const float* v, int n, float scale, const float* bias, std::uint16_t* out) {
    gelu_bf16_avx512(v, n, scale, bias, out, gelu_erf);
}
ONEVIT_BF16_TARGET void gelu_tanh_bf16_row(const float* v, int n, float scale, const float* bias, std::uint16_t* out) {
    gelu_bf16_avx512(v, n, scale, bias, out, gelu_tanh);
}
ONEVIT_BF16_TARGET void gelu_quick_bf16_row(const float* v, int n, float scale, const float* bias, std::uint16_t* out) {
    gelu_bf16_avx512(v, n, scale, bias, out, gelu_quick);
}

}  // namespace

void apply_gelu_to_bf16(Gelu gelu, const float* values, int n, float scale, const float* bias, std::uint16_t* out) {
    if (!cpu_rounds_to_bf16()) throw std::logic_error("apply_gelu_to_bf16: this CPU has no AVX512-BF16");
    switch (gelu) {
        case Gelu::erf:
            return gelu_erf_bf16_row(values, n, scale, bias, out);
        case Gelu::tanh:
            return gelu_tanh_bf16_row(values, n, scale, bias, out);
        case Gelu::quick:
            return gelu_quick_bf16_row(values, n, scale, bias, out);
    }
}

void apply_gelu_into(Gelu gelu, const float* values, int n, float scale, const float* bias, float* out) {
    switch (gelu) {
        case Gelu::erf:
            return gelu_erf_row_into(values, n, scale, bias, out);
        case Gelu::tanh:
            return gelu_tanh_row_into(values, n, scale, bias, out);
        case Gelu::quick:
            return gelu_quick_row_into(values, n, scale, bias, out);
    }
}

float apply_gelu(Gelu gelu, float* values, int n, float scale, const float* bias) {
    switch (gelu) {
        case Gelu::erf:
            return gelu_erf_row(values, n, scale, bias);
        case Gelu::tanh:
            return gelu_tanh_row(values, n, scale, bias);
        case Gelu::quick:
            return gelu_quick_row(values, n, scale, bias);
    }
    return 0.f;
}

}  // namespace onevit
