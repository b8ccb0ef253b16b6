// Float functions for the row loops of ops/ (GELU, softmax), written so that
// a loop calling them vectorises: no calls, no branches, no table lookups.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace onevit {

// e^x for x in [-87, 88]: 2^k · e^r with k = round(x / ln2), |r| ≤ ln2 / 2,
// e^r by its Taylor polynomial to degree 6 (relative error < 2e-7 there).
// k is read from the bits of x / ln2 + 1.5·2^23, whose low bits hold it, in
// unsigned arithmetic: a NaN (a hostile model's) gives NaN, not a float → int
// conversion out of range (undefined behaviour).
inline float exp_of(float x) {
    constexpr float kLog2e = 1.44269504f, kLn2 = 0.693147181f, kMagic = 12582912.f;  // 1.5·2^23
    constexpr std::uint32_t kMagicBits = 0x4b400000u;
    x = std::clamp(x, -87.f, 88.f);
    const float shifted = x * kLog2e + kMagic;  // round to nearest
    const float k = shifted - kMagic;
    const float r = x - k * kLn2;
    float p = 1.f / 720;
    p = p * r + 1.f / 120;
    p = p * r + 1.f / 24;
    p = p * r + 1.f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.f;
    p = p * r + 1.f;
    std::uint32_t shifted_bits;
    std::memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
    const std::uint32_t bits = (shifted_bits - kMagicBits + 127u) << 23;
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

}  // namespace onevit
