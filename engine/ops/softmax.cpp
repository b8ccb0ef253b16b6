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

// values[i] = e^{values[i] − shift}, in place; returns their sum.
ONEVIT_VECTOR_CLONES
float exp_shifted_sum(float* values, int n, float shift) {
    return lane_sum(n, [&](int i) { return values[i] = exp_of(values[i] - shift); });
}

ONEVIT_VECTOR_CLONES
void add_into(float* values, int n, const float* addend) {
    for (int i = 0; i < n; ++i) values[i] += addend[i];
}

ONEVIT_VECTOR_CLONES
void scale_row(float* values, int n, float scale) {
    for (int i = 0; i < n; ++i) values[i] *= scale;
}

}  // namespace

// Three passes a row: the maximum; the exponentials and their sum; the
// division by the sum, in place or as the probabilities are stored.
void softmax_rows(float* scores, int rows, int cols, const Activation& probabilities, const float* bias) {
    for (int r = 0; r < rows; ++r) {
        float* row = scores + std::int64_t(r) * cols;
        if (bias) add_into(row, cols, bias + std::int64_t(r) * cols);
        const float inverse_sum = 1.f / exp_shifted_sum(row, cols, max_of(row, cols));
        if (probabilities.data == scores)
            scale_row(row, cols, inverse_sum);
        else
            store_row(row, cols, probabilities, r, cols, 0, inverse_sum);
    }
}

}  // namespace onevit
