// numpy arrays in and out of the onevit Python module: the checks that turn a
// wrong dtype, shape or layout into a TypeError or ValueError naming what was
// expected (before the engine reads a byte), and results handed to numpy
// without a copy.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "onevit/image.hpp"
#include "onevit/model_info.hpp"

namespace onevit::python {

namespace py = pybind11;

// A batch of model input viewed in place: the array's own float32 memory.
struct InputBatch {
    py::array array;  // keeps the memory alive while the engine reads it
    const float* data = nullptr;
    int batch = 0;
};

// x must be a numpy.ndarray of float32, C-contiguous and aligned, of shape
// [N, C, H, W] with N >= 1 and (C, H, W) the model's input. `what` names the
// argument in the messages.
InputBatch input_batch(const py::handle& x, const Architecture& arch, const char* what);

// image must be a numpy.ndarray of uint8, [H, W] (grey) or [H, W, C] with C 1
// (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA), C-contiguous. The pixels are
// copied into the engine's Image and converted to `channels` as PIL converts
// (alpha dropped, grey replicated, RGB to luma), as a decoded file would be.
Image image_from_array(const py::handle& image, int channels, const char* what);

// A vector's memory becomes the array's: no copy, freed with the array.
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
    auto* owned = new std::vector<T>(std::move(values));
    py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>(std::move(shape), owned->data(), free_when_done);
}

}  // namespace onevit::python
