#include "ops/quantize.hpp"

#include <algorithm>
#include <cmath>

namespace onevit {

namespace {

// Adding and subtracting 1.5·2^23 rounds |x| < 2^22 to the nearest integer,
// ties to even, in plain float arithmetic that the compiler vectorises.
inline float round_even(float x) {
    constexpr float kMagic = 12582912.f;
    return (x + kMagic) - kMagic;
}

float symmetric_scale(const float* values, int n) {
    float max_abs = 0.f;
    for (int i = 0; i < n; ++i) max_abs = std::max(max_abs, std::abs(values[i]));
    return max_abs > 0.f ? max_abs / 127.f : 1.f;
}

void quantize(const float* values, int n, float scale, std::int8_t* q) {
    const float inverse = 1.f / scale;
    for (int i = 0; i < n; ++i)
        q[i] = static_cast<std::int8_t>(std::clamp(round_even(values[i] * inverse), -127.f, 127.f));
}

}  // namespace

QuantizedWeights quantize_per_output_channel(const float* weight, int out, int in) {
    QuantizedWeights q;
    q.values.resize(std::size_t(out) * in);
    q.scales.resize(out);
    for (int o = 0; o < out; ++o) {
        const float* row = weight + std::size_t(o) * in;
        q.scales[o] = symmetric_scale(row, in);
        quantize(row, in, q.scales[o], q.values.data() + std::size_t(o) * in);
    }
    return q;
}

void store_row(const float* values, int n, const Activation& dst, std::int64_t row, std::int64_t stride) {
    using Type = Activation::Type;
    switch (dst.type) {
        case Type::f32: std::memcpy(dst.at(row, stride), values, sizeof(float) * n); return;
        case Type::bf16: {
            auto* out = static_cast<std::uint16_t*>(dst.at(row, stride));
            for (int i = 0; i < n; ++i) out[i] = to_bf16(values[i]);
            return;
        }
        case Type::s8: {
            const float scale = symmetric_scale(values, n);
            dst.row_scales[row] = scale;
            quantize(values, n, scale, static_cast<std::int8_t*>(dst.at(row, stride)));
            return;
        }
        default: throw std::logic_error("store_row: unsupported activation type");
    }
}

void load_row(const Activation& src, std::int64_t row, std::int64_t stride, int n, float* values) {
    using Type = Activation::Type;
    switch (src.type) {
        case Type::f32: std::memcpy(values, src.at(row, stride), sizeof(float) * n); return;
        case Type::bf16: {
            const auto* in = static_cast<const std::uint16_t*>(src.at(row, stride));
            for (int i = 0; i < n; ++i) values[i] = from_bf16(in[i]);
            return;
        }
        default: throw std::logic_error("load_row: unsupported activation type");
    }
}

ConvertRowsSteps::ConvertRowsSteps(int threads, int rows, int cols, Activation src, Activation dst) {
    for (Range r : split_evenly(rows, std::min(rows, threads))) {
        Step step;
        step.kernel = [=] {
            thread_local std::vector<float> row_values;
            row_values.resize(cols);
            for (int row = r.begin; row < r.begin + r.size; ++row) {
                load_row(src, row, cols, cols, row_values.data());
                store_row(row_values.data(), cols, dst, row, cols);
            }
        };
        add_row_tile(std::move(step), dnnl::memory::desc(), r);
    }
}

}  // namespace onevit
