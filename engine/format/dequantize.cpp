#include "format/dequantize.hpp"

#include <cstring>

namespace onevit {

void bf16_to_f32(const std::uint16_t* bf16, std::int64_t count, float* out) {
    for (std::int64_t i = 0; i < count; ++i) {
        const std::uint32_t bits = std::uint32_t{bf16[i]} << 16;
        std::memcpy(out + i, &bits, sizeof bits);
    }
}

void dequantize_s8_rows(const std::int8_t* q, const float* scales, std::int64_t rows, std::int64_t columns,
                        float* out) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const float scale = scales[r];
        for (std::int64_t c = 0; c < columns; ++c) out[r * columns + c] = float(q[r * columns + c]) * scale;
    }
}

}  // namespace onevit
