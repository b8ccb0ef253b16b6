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

// out[i] = value(i) rounded to bf16 for i < n, 32 values a step, the tail under
// a mask. Only inside an ONEVIT_BF16_TARGET function, where cpu_rounds_to_bf16().
template <class Value>
ONEVIT_BF16_TARGET inline void store_bf16_by_cpu(int n, std::uint16_t* out, Value value) {
    for (int i = 0; i < n; i += 32) {
        const int count = std::min(32, n - i);
        alignas(64) float v[32] = {};
        for (int k = 0; k < count; ++k) v[k] = value(i + k);
        const __m512bh pair = _mm512_cvtne2ps_pbh(_mm512_load_ps(v + 16), _mm512_load_ps(v));
        _mm512_mask_storeu_epi16(out + i, _cvtu32_mask32(count == 32 ? ~0u : (1u << count) - 1), __m512i(pair));
    }
}

}  // namespace onevit
