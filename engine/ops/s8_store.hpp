// Floats divided by a row's scale and stored as s8 steps, 16 at a time by
// AVX-512, as quantize's plain loop computes them: rounded to nearest even by
// kRoundingMagic in the multiply-add, clamped to ±127, a NaN to 127.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "ops/vector_math.hpp"

namespace onevit {

// x / scale (inverse = 1 / scale) as 16 s8 steps at out. min(y, 127) is 127
// for a NaN y, as std::min(127, y).
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void store_quantized16(__m512 x, __m512 inverse,
                                                                                         std::int8_t* out) {
    const __m512 magic = _mm512_set1_ps(kRoundingMagic);
    const __m512 rounded = _mm512_sub_ps(_mm512_fmadd_ps(x, inverse, magic), magic);
    const __m512 clamped = _mm512_max_ps(_mm512_min_ps(rounded, _mm512_set1_ps(127.f)), _mm512_set1_ps(-127.f));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(clamped)));
}

}  // namespace onevit
