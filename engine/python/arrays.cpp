#include "arrays.hpp"

#include <climits>
#include <string>

namespace onevit::python {

namespace {

std::string shape_string(const py::array& array) {
    std::string text = "(";
    for (py::ssize_t d = 0; d < array.ndim(); ++d) text += (d ? ", " : "") + std::to_string(array.shape(d));
    return text + (array.ndim() == 1 ? ",)" : ")");
}

std::string type_name(const py::handle& object) {
    return py::str(py::type::handle_of(object).attr("__name__")).cast<std::string>();
}

// An ndarray of `dtype`, or a TypeError naming what was expected.
py::array typed_array(const py::handle& object, const py::dtype& dtype, const char* dtype_name, const char* what) {
    if (!py::isinstance<py::array>(object))
        throw py::type_error(std::string(what) + " must be a numpy.ndarray of " + dtype_name + ", got " +
                             type_name(object));
    py::array array = py::reinterpret_borrow<py::array>(object);
    if (!array.dtype().equal(dtype))
        throw py::type_error(std::string(what) + " must have dtype " + dtype_name + ", got " +
                             py::str(array.dtype()).cast<std::string>() + " (convert with .astype(numpy." + dtype_name +
                             "))");
    return array;
}

// Engine code reads the array as a plain C array: C-contiguous, at an address
// aligned for its elements.
void check_layout(const py::array& array, const char* what) {
    if (!(array.flags() & py::array::c_style))
        throw py::value_error(std::string(what) +
                              " must be C-contiguous (numpy.ascontiguousarray makes a C-contiguous copy)");
    if (!(array.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        throw py::value_error(std::string(what) + " must be aligned to its element size (copy it with .copy())");
}

}  // namespace

InputBatch input_batch(const py::handle& x, const Architecture& arch, const char* what) {
    py::array array = typed_array(x, py::dtype::of<float>(), "float32", what);
    const py::ssize_t expected[] = {arch.channels, arch.image_height, arch.image_width};
    const bool shape_ok = array.ndim() == 4 && array.shape(1) == expected[0] && array.shape(2) == expected[1] &&
                          array.shape(3) == expected[2];
    if (!shape_ok || array.shape(0) < 1 || array.shape(0) > INT_MAX)
        throw py::value_error(std::string(what) + " has shape " + shape_string(array) +
                              ", the model takes float32 [N, C, H, W] = [N, " + std::to_string(expected[0]) + ", " +
                              std::to_string(expected[1]) + ", " + std::to_string(expected[2]) + "] with N >= 1");
    check_layout(array, what);
    InputBatch input;
    input.data = static_cast<const float*>(array.data());
    input.batch = static_cast<int>(array.shape(0));
    input.array = std::move(array);
    return input;
}

Image image_from_array(const py::handle& object, int channels, const char* what) {
    py::array array = typed_array(object, py::dtype::of<std::uint8_t>(), "uint8", what);
    const bool grey = array.ndim() == 2;
    if ((array.ndim() != 3 && !grey) || (!grey && (array.shape(2) < 1 || array.shape(2) > 4)) || array.shape(0) < 1 ||
        array.shape(1) < 1 || array.shape(0) > INT_MAX || array.shape(1) > INT_MAX)
        throw py::value_error(std::string(what) + " has shape " + shape_string(array) +
                              ", expected uint8 pixels [H, W] or [H, W, C] with C = 1 (grey), 2 (grey + alpha), "
                              "3 (RGB) or 4 (RGBA)");
    check_layout(array, what);
    Image image;
    image.height = static_cast<int>(array.shape(0));
    image.width = static_cast<int>(array.shape(1));
    image.channels = grey ? 1 : static_cast<int>(array.shape(2));
    const auto* pixels = static_cast<const std::uint8_t*>(array.data());
    image.pixels.assign(pixels, pixels + array.size());
    return convert_channels(std::move(image), channels);
}

}  // namespace onevit::python
