// An activation buffer as the ops see it: rows of one data type, and for s8
// (int8 precision) one f32 scale per row, so that row r holds q · scale[r].
// The buffers are float-sized (AlignedBuffer); narrower types use their start.
#pragma once

#include <cstddef>
#include <cstdint>

#include <oneapi/dnnl/dnnl.hpp>

namespace onevit {

struct Activation {
    using Type = dnnl::memory::data_type;
    void* data = nullptr;
    Type type = Type::f32;
    float* row_scales = nullptr;  // s8 only: [rows]

    Activation(float* values) : data(values) {}
    Activation(const float* values) : data(const_cast<float*>(values)) {}
    Activation(void* values, Type t, float* scales = nullptr) : data(values), type(t), row_scales(scales) {}

    // The element at (row, column) of a matrix whose rows are `stride` elements apart.
    void* at(std::int64_t row, std::int64_t stride, std::int64_t column = 0) const {
        return static_cast<char*>(data) + (row * stride + column) * bytes_per_element(type);
    }
    static std::size_t bytes_per_element(Type t) { return dnnl::memory::data_type_size(t); }
};

}  // namespace onevit
