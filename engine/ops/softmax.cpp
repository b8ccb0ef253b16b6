#include "ops/softmax.hpp"

#include <cstdint>
#include <cstring>

#include <algorithm>

#include "ops/quantize.hpp"
#include "ops/vector_math.hpp"

namespace onevit {

namespace {

// Floats that are not NaN order as these integers: the bits with, for
// negative values, all but the sign flipped (its own inverse). An integer
// maximum vectorises, where a float one (std::max's NaN order) does not.
inline std::int32_t ordered_bits(std::int32_t bits) { return bits ^ ((bits >> 31) & 0x7fffffff); }
inline std::int32_t order_key(float value) {
    std::int32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return ordered_bits(bits);
}
inline float from_order_key(std::int32_t key) {
    const std::int32_t bits = ordered_bits(key);
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}
constexpr float kMinusInfinity = -__builtin_inff();

ONEVIT_VECTOR_CLONES
float max_of(const float* values, int n) {
    std::int32_t max_key = order_key(kMinusInfinity);
    for (int i = 0; i < n; ++i) max_key = std::max(max_key, order_key(values[i]));
    return from_order_key(max_key);
}

// values[i] = e^{values[i] − shift}, in place; returns their sum.
ONEVIT_VECTOR_CLONES
float exp_shifted_sum(float* values, int n, float shift) {
    return lane_sum(n, [&](int i) { return values[i] = exp_of(values[i] - shift); });
}

// The same to bf16's precision (vector_math.hpp), for probabilities stored as
// bf16 or u8.
ONEVIT_VECTOR_CLONES
float exp_shifted_sum_for_bf16(float* values, int n, float shift) {
    return lane_sum(n, [&](int i) { return values[i] = exp_for_bf16(values[i] - shift); });
}

ONEVIT_VECTOR_CLONES
void add_into(float* values, int n, const float* addend) {
    for (int i = 0; i < n; ++i) values[i] += addend[i];
}

ONEVIT_VECTOR_CLONES
void scale_row(float* values, int n, float scale) {
    for (int i = 0; i < n; ++i) values[i] *= scale;
}

ONEVIT_VECTOR_CLONES
void scale_by(float* values, int n, float row_scale, const float* col_scales) {
    for (int i = 0; i < n; ++i) values[i] *= row_scale * col_scales[i];
}

// values[i] *= row_scale · col_scales[i] (row_scale only, col_scales null);
// returns their maximum: the two passes of a row in one.
ONEVIT_VECTOR_CLONES
float scale_by_and_max(float* values, int n, float row_scale, const float* col_scales) {
    std::int32_t max_key = order_key(kMinusInfinity);
    for (int i = 0; i < n; ++i)
        max_key = std::max(max_key, order_key(values[i] *= col_scales ? row_scale * col_scales[i] : row_scale));
    return from_order_key(max_key);
}

// values (≥ 0, or NaN from a hostile model) to u8 steps of max/255, rounded
// to nearest even; NaN clamps to 255 (std::min's order), never undefined.
ONEVIT_VECTOR_CLONES
void quantize_u8(const float* values, int n, float inverse_step, std::uint8_t* out) {
    for (int i = 0; i < n; ++i)
        out[i] = static_cast<std::uint8_t>(std::max(0.f, std::min(255.f, round_even(values[i] * inverse_step))));
}

}  // namespace

// Four passes a row: the scales and the maximum (bias: three); the
// exponentials and their sum; v's scales and their maximum; the u8 steps.
void softmax_rows_u8(float* products, int rows, int cols, const float* q_scales, float scale, const float* k_scales,
                     const float* bias, const float* v_scales, std::uint8_t* u8, float* p_scales,
                     float* probabilities) {
    for (int r = 0; r < rows; ++r) {
        float* row = products + std::int64_t(r) * cols;
        float max = 0.f;
        if (bias) {
            if (k_scales) scale_by(row, cols, q_scales[r] * scale, k_scales);
            add_into(row, cols, bias + std::int64_t(r) * cols);
            max = max_of(row, cols);
        } else {
            max = k_scales ? scale_by_and_max(row, cols, q_scales[r] * scale, k_scales) : max_of(row, cols);
        }
        const float sum = exp_shifted_sum_for_bf16(row, cols, max);  // ample for u8 steps
        if (probabilities) store_row(row, cols, Activation(probabilities), r, cols, 0, 1.f / sum);
        const float step = scale_by_and_max(row, cols, 1.f, v_scales) / 255.f;
        quantize_u8(row, cols, step > 0.f ? 1.f / step : 0.f, u8 + std::int64_t(r) * cols);
        p_scales[r] = step / sum;
    }
}

// Three passes a row: the maximum; the exponentials and their sum; the
// division by the sum, in place or as the probabilities are stored.
void softmax_rows(float* scores, int rows, int cols, const Activation& probabilities, const float* bias) {
    for (int r = 0; r < rows; ++r) {
        float* row = scores + std::int64_t(r) * cols;
        if (bias) add_into(row, cols, bias + std::int64_t(r) * cols);
        const float max = max_of(row, cols);
        const float inverse_sum =
            1.f / (probabilities.type == Activation::Type::bf16 ? exp_shifted_sum_for_bf16(row, cols, max)
                                                                : exp_shifted_sum(row, cols, max));
        if (probabilities.data == scores)
            scale_row(row, cols, inverse_sum);
        else
            store_row(row, cols, probabilities, r, cols, 0, inverse_sum);
    }
}

}  // namespace onevit
