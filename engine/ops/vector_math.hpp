// Float functions for the row loops of ops/ (GELU, softmax), written so that
// a loop calling them vectorises: no calls, no branches, no table lookups.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace onevit {

// The sum of term(i) over i in [0, n), in 16 independent lanes so that the
// loop vectorises (a single running sum fixes the order of the additions).
template <class Term>
inline float lane_sum(int n, Term term) {
    constexpr int kLanes = 16;
    float lanes[kLanes] = {};
    int i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lanes[l] += term(i + l);
    float sum = 0.f;
    for (; i < n; ++i) sum += term(i);
    for (float lane : lanes) sum += lane;
    return sum;
}

// Adding 1.5·2^23 to |y| < 2^22 rounds it to the nearest integer, ties to
// even, which the sum's low bits then hold.
constexpr float kRoundingMagic = 12582912.f;

// |x| < 2^22 rounded to the nearest integer, ties to even, in plain float
// arithmetic that the compiler vectorises.
inline float round_even(float x) { return (x + kRoundingMagic) - kRoundingMagic; }

// 2^k for the integer k that shifted = y + kRoundingMagic holds, k in
// [-126, 127], read from its bits in unsigned arithmetic.
inline float two_to_the_rounded(float shifted) {
    constexpr std::uint32_t kMagicBits = 0x4b400000u;  // kRoundingMagic's bits
    std::uint32_t shifted_bits;
    std::memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
    const std::uint32_t bits = (shifted_bits - kMagicBits + 127u) << 23;
    float two_to_k;
    std::memcpy(&two_to_k, &bits, sizeof two_to_k);
    return two_to_k;
}

// e^x for x in [-87, 88]: 2^k · e^r with k = round(x / ln2), |r| ≤ ln2 / 2,
// e^r by its Taylor polynomial to degree 6 (relative error < 2e-7 there).
// k is read from the bits of x / ln2 + 1.5·2^23, whose low bits hold it, in
// unsigned arithmetic: a NaN (a hostile model's) gives NaN, not a float → int
// conversion out of range (undefined behaviour).
inline float exp_of(float x) {
    constexpr float kLog2e = 1.44269504f, kLn2 = 0.693147181f;
    x = std::clamp(x, -87.f, 88.f);
    const float shifted = x * kLog2e + kRoundingMagic;  // round to nearest
    const float k = shifted - kRoundingMagic;
    const float r = x - k * kLn2;
    float p = 1.f / 720;
    p = p * r + 1.f / 120;
    p = p * r + 1.f / 24;
    p = p * r + 1.f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.f;
    p = p * r + 1.f;
    return p * two_to_the_rounded(shifted);
}

// e^x within 8e-5 relative, for values rounded to bf16 next (a rounding of up
// to 2^-9 = 2e-3 of its own): 2^k · 2^r with k = round(x · log2 e), |r| ≤ 1/2,
// 2^r by a degree-3 polynomial fitted to its relative error: five operations
// fewer than exp_of, for the bf16 softmax. x is clamped to [-87, 88] as in
// exp_of; a NaN gives NaN.
inline float exp_for_bf16(float x) {
    constexpr float kLog2e = 1.44269504f;
    const float y = std::clamp(x, -87.f, 88.f) * kLog2e;
    const float shifted = y + kRoundingMagic;  // round to nearest
    const float r = y - (shifted - kRoundingMagic);
    float p = 0.0551693751f;
    p = p * r + 0.24260777f;
    p = p * r + 0.693261107f;
    p = p * r + 0.999928292f;
    return p * two_to_the_rounded(shifted);
}

}  // namespace onevit
