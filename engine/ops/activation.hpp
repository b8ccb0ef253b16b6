// An activation buffer as the ops see it: rows of one data type, and for s8
// (int8 precision) one f32 scale per row, so that row r holds q · scale[r];
// or, with scale_group, one per group of that many columns of a row (qkv's
// per head's q, k and v at int8), row-major: row r's group g at
// row_scales[r · groups + g]. The buffers are float-sized (AlignedBuffer);
// narrower types use their start.
#pragma once

#include <cstddef>
#include <cstdint>

#include <oneapi/dnnl/dnnl.hpp>

namespace onevit {

struct Activation {
    using Type = dnnl::memory::data_type;
    void* data = nullptr;
    Type type = Type::f32;
    float* row_scales = nullptr;  // s8 only: [rows], or [rows][groups]
    int scale_group = 0;          // s8: columns per scale; 0: the whole row

    Activation(float* values) : data(values) {}
    Activation(const float* values) : data(const_cast<float*>(values)) {}
    Activation(void* values, Type t, float* scales = nullptr, int group = 0)
        : data(values), type(t), row_scales(scales), scale_group(group) {}

    // The element at (row, column) of a matrix whose rows are `stride` elements apart.
    void* at(std::int64_t row, std::int64_t stride, std::int64_t column = 0) const {
        return static_cast<char*>(data) + (row * stride + column) * bytes_per_element(type);
    }
    // The scale of the value at (row, column), rows `stride` elements apart.
    float* scale_at(std::int64_t row, std::int64_t stride, std::int64_t column = 0) const {
        return scale_group ? row_scales + row * (stride / scale_group) + column / scale_group : row_scales + row;
    }
    static std::size_t bytes_per_element(Type t) { return dnnl::memory::data_type_size(t); }
};

}  // namespace onevit
