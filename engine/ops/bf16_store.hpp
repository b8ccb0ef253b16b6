// Floats rounded to bf16 by the CPU's own instruction (AVX512-BF16's
// vcvtne2ps2bf16) in the pass that computes them: in plain code the rounding's
// integer operations cost as much as a pass of their own (docs/performance.md).
// Nearest even, as store_row's software rounding; a NaN stays NaN (its
// payload may differ); a result below bf16's normal range, |x| < 1.2e-38, is 0.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#define ONEVIT_BF16_TARGET __attribute__((target("arch=x86-64-v4,avx512bf16")))

namespace onevit {

// Whether this CPU rounds floats to bf16 itself, so that store_bf16_by_cpu can run.
inline bool cpu_rounds_to_bf16() {
    static const bool supported = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
    return supported;
}

// A mask of the first count of 16 lanes (all 16 for count >= 16).
inline __mmask16 first_lanes(int count) {
    return count >= 16 ? __mmask16(0xffff) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1);
}

// out[i] = the values rounded to bf16 for i < n, 32 a step, the tail under a
// mask: value16(i, mask) gives the 16 values from i on as a vector, reading
// no lane outside mask. Only inside an ONEVIT_BF16_TARGET function, where
// cpu_rounds_to_bf16(), value16 a lambda marked ONEVIT_BF16_TARGET too.
template <class Value16>
ONEVIT_BF16_TARGET inline void store_bf16_by_cpu(int n, std::uint16_t* out, Value16 value16) {
    for (int i = 0; i < n; i += 32) {
        const int count = std::min(32, n - i);
        const __m512 low = value16(i, first_lanes(count)), high = value16(i + 16, first_lanes(count - 16));
        _mm512_mask_storeu_epi16(out + i, _cvtu32_mask32(count == 32 ? ~0u : (1u << count) - 1),
                                 __m512i(_mm512_cvtne2ps_pbh(high, low)));
    }
}

}  // namespace onevit
