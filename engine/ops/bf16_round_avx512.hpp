// f32 to bf16 in AVX-512 registers, as quantize.hpp's to_bf16_row rounds
// (to nearest even, NaN kept quiet), for kernels that store bf16 directly.
// Integer steps, not vcvtneps2bf16: that flushes subnormals, and these
// kernels run on CPUs without AVX512_BF16 too.
#pragma once

#include <immintrin.h>

namespace onevit {

// Each lane's bf16 bits, in the low 16 bits of its 32.
__attribute__((target("avx512f"), always_inline)) inline __m512i bf16_bits(__m512 x) {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i high = _mm512_srli_epi32(bits, 16);
    const __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(bits,
                         _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(high, _mm512_set1_epi32(1)))),
        16);
    const __mmask16 nan =
        _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    const __m512i quiet = _mm512_or_si512(high, _mm512_set1_epi32(0x40));
    return _mm512_mask_blend_epi32(nan, rounded, quiet);
}

}  // namespace onevit
