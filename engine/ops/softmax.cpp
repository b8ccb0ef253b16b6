#include "ops/softmax.hpp"

#include <cstdint>
#include <cstring>

#include "ops/quantize.hpp"
#include "ops/vector_math.hpp"

namespace onevit {

namespace {

// Floats that are not NaN order as these integers: the bits with, for
// negative values, all but the sign flipped (its own inverse). An integer
// maximum vectorises, where a float one (std::max's NaN order) does not.
inline std::int32_t ordered_bits(std::int32_t bits) { return bits ^ ((bits >> 31) & 0x7fffffff); }

ONEVIT_VECTOR_CLONES
float max_of(const float* values, int n) {
    std::int32_t max_key = ordered_bits(static_cast<std::int32_t>(0xff800000u));  // -inf
    for (int i = 0; i < n; ++i) {
        std::int32_t bits;
        std::memcpy(&bits, &values[i], sizeof bits);
        max_key = std::max(max_key, ordered_bits(bits));
    }
    const std::int32_t bits = ordered_bits(max_key);
    float max;
    std::memcpy(&max, &bits, sizeof max);
    return max;
}

ONEVIT_VECTOR_CLONES
void exp_shifted(float* values, int n, float shift) {
    for (int i = 0; i < n; ++i) values[i] = exp_of(values[i] - shift);
}

ONEVIT_VECTOR_CLONES
void scale_row(float* values, int n, float scale) {
    for (int i = 0; i < n; ++i) values[i] *= scale;
}

}  // namespace

void softmax_rows(float* scores, int rows, int cols, const Activation& probabilities) {
    for (int r = 0; r < rows; ++r) {
        float* row = scores + std::int64_t(r) * cols;
        exp_shifted(row, cols, max_of(row, cols));
        scale_row(row, cols, 1.f / sum_of(row, cols));
        if (probabilities.data != scores) store_row(row, cols, probabilities, r, cols);
    }
}

}  // namespace onevit
