// NumPy .npy files of float32: how `onevit infer` exchanges tensors with Python.
// Reading accepts exactly what numpy writes for a C-order little-endian float32
// array (format versions 1.0, 2.0 and 3.0) and refuses anything else with a
// message that says why; it never trusts the header's sizes before checking them
// against the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace onevit::npy {

struct Array {
    std::vector<std::int64_t> shape;  // empty for a 0-d array (one element)
    std::vector<float> data;          // row-major, product(shape) elements
};

// Throws onevit::Error with a message that starts with the path.
Array read_float32(const std::string& path);

// Writes format version 1.0, the header padded so the data starts at a multiple
// of 64 bytes. Throws onevit::Error if data.size() != product(shape) or on an
// I/O failure.
void write_float32(const std::string& path, const Array& array);

// "(2, 3, 4)", "(5,)" or "()": a shape as Python writes a tuple.
std::string shape_string(const std::vector<std::int64_t>& shape);

}  // namespace onevit::npy
