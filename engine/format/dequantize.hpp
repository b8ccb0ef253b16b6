// Widening the reduced-precision tensors of a model file (weights/FORMAT.md,
// "Tensor data types") back to f32, exactly as the format defines their values.
#pragma once

#include <cstdint>

namespace onevit {

// bf16 is the upper half of an f32: widening is exact.
void bf16_to_f32(const std::uint16_t* bf16, std::int64_t count, float* out);

// int8 rows: value = q × scale[row], rounded once to f32.
void dequantize_s8_rows(const std::int8_t* q, const float* scales, std::int64_t rows, std::int64_t columns, float* out);

}  // namespace onevit
