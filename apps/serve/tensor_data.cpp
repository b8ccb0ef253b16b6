#include "tensor_data.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "request_error.hpp"

namespace onevit::serve {

namespace {

[[noreturn]] void refuse(const std::string& message) { throw RequestError(Status::bad_request, message); }

std::string inputs_text(const ModelSpec& spec) {
    return fmt::format("the model's inputs: {} FP32 {}, {} BYTES [-1]", kPixelInput, shape_text(spec.pixel_shape()),
                       kImageInput);
}

int checked_batch(const ModelSpec& spec, const std::string& name, std::int64_t batch) {
    if (batch < 1) refuse(fmt::format("input '{}': batch {} (the first dimension must be at least 1)", name, batch));
    if (batch > spec.max_batch)
        refuse(
            fmt::format("input '{}': batch {} is more than this server's --max-batch {}", name, batch, spec.max_batch));
    return static_cast<int>(batch);
}

}  // namespace

std::string shape_text(const std::vector<std::int64_t>& shape) {
    std::string text = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
    return text + "]";
}

CheckedInput check_input(const ModelSpec& spec, const std::string& name, const std::string& datatype,
                         const std::vector<std::int64_t>& shape) {
    if (name == kPixelInput) {
        if (datatype != "FP32") refuse(fmt::format("input '{}' is FP32, got datatype '{}'", name, datatype));
        const std::vector<std::int64_t> expected = spec.pixel_shape();
        if (shape.size() != 4 || shape[1] != expected[1] || shape[2] != expected[2] || shape[3] != expected[3])
            refuse(fmt::format("input '{}' has shape {}, got {}", name, shape_text(expected), shape_text(shape)));
        const int batch = checked_batch(spec, name, shape[0]);
        return {InputKind::pixels, batch, std::size_t(batch) * spec.image_floats()};
    }
    if (name == kImageInput) {
        if (datatype != "BYTES")
            refuse(fmt::format("input '{}' is BYTES (encoded JPEG/PNG files), got datatype '{}'", name, datatype));
        if (shape.size() != 1) refuse(fmt::format("input '{}' has shape [-1], got {}", name, shape_text(shape)));
        const int batch = checked_batch(spec, name, shape[0]);
        return {InputKind::images, batch, std::size_t(batch)};
    }
    refuse(fmt::format("unknown input '{}' ({})", name, inputs_text(spec)));
}

void check_fp32_size(std::size_t bytes, std::size_t elements) {
    if (bytes != elements * sizeof(float))
        refuse(fmt::format("FP32 data of {} bytes, the shape needs {} ({} values)", bytes, elements * sizeof(float),
                           elements));
}

ImageSlots fp32_from_bytes(std::string_view bytes, std::size_t elements, ImagePool& pool) {
    check_fp32_size(bytes.size(), elements);
    return pool.copy_of(bytes.data(), bytes.size());  // x86: little-endian, as the protocol sends
}

void require_finite(const float* values, std::size_t count, std::size_t first) {
    // An exponent of all ones is an infinity or a NaN. On every request's every pixel: one
    // branch-free pass the compiler vectorises, then the index only for a refusal.
    std::uint32_t found = 0;
    for (std::size_t i = 0; i < count; ++i) {
        std::uint32_t bits;
        std::memcpy(&bits, values + i, sizeof bits);
        found |= (bits & 0x7f800000u) == 0x7f800000u;
    }
    if (!found) return;
    for (std::size_t i = 0; i < count; ++i)
        if (!std::isfinite(values[i]))
            refuse(fmt::format("value {} is {} (pixels must be finite)", first + i, values[i]));
}

void require_finite(const ImageSlots& images) {
    for (int i = 0; i < images.count(); ++i)
        require_finite(images.image(i), images.image_floats(), std::size_t(i) * images.image_floats());
}

std::vector<std::string> strings_from_bytes(std::string_view bytes, std::size_t elements) {
    std::vector<std::string> strings;
    std::size_t at = 0;
    while (at < bytes.size()) {
        if (bytes.size() - at < 4)
            refuse(fmt::format("BYTES data ends inside the length of element {}", strings.size()));
        std::uint32_t length = 0;
        std::memcpy(&length, bytes.data() + at, 4);
        at += 4;
        if (length > bytes.size() - at)
            refuse(fmt::format("BYTES element {} claims {} bytes, {} are left", strings.size(), length,
                               bytes.size() - at));
        if (strings.size() == elements)
            refuse(fmt::format("BYTES data holds more than the shape's {} elements", elements));
        strings.emplace_back(bytes.substr(at, length));
        at += length;
    }
    if (strings.size() != elements)
        refuse(fmt::format("BYTES data holds {} elements, the shape needs {}", strings.size(), elements));
    return strings;
}

void append_fp32_bytes(const std::vector<float>& values, std::string& out) {
    out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

void append_string_bytes(const std::vector<std::string>& strings, std::string& out) {
    for (const std::string& s : strings) {
        const auto length = static_cast<std::uint32_t>(s.size());
        out.append(reinterpret_cast<const char*>(&length), 4);
        out += s;
    }
}

}  // namespace onevit::serve
