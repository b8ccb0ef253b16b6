// The tensor checks and raw encodings both protocol codecs share: an input's
// name, datatype and shape against the model; FP32 and BYTES tensors as raw
// bytes (little-endian floats; each BYTES element a 4-byte little-endian length
// and its bytes), as the binary tensor data extension and gRPC's raw contents carry them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "image_pool.hpp"
#include "model_spec.hpp"

namespace onevit::serve {

enum class InputKind { pixels, images };

struct CheckedInput {
    InputKind kind;
    int batch;
    std::size_t elements;  // values (pixels) or strings (images) the data must hold
};

// name / datatype / shape of the request's one input against the model; throws
// RequestError (bad_request) naming what is wrong and what the model expects.
CheckedInput check_input(const ModelSpec& spec, const std::string& name, const std::string& datatype,
                         const std::vector<std::int64_t>& shape);

// The byte count of FP32 data must be exactly `elements` floats.
void check_fp32_size(std::size_t bytes, std::size_t elements);
// Raw FP32 bytes → images in slots of the pool (RequestError unavailable when it is full).
ImageSlots fp32_from_bytes(std::string_view bytes, std::size_t elements, ImagePool& pool);
// Every value finite: NaN or infinity in an image is a client bug, not a picture.
// first: the index of values[0] in the request, for the message.
void require_finite(const float* values, std::size_t count, std::size_t first = 0);
void require_finite(const ImageSlots& images);
// Raw BYTES → its elements; must hold exactly `elements` of them and nothing after.
std::vector<std::string> strings_from_bytes(std::string_view bytes, std::size_t elements);

void append_fp32_bytes(const std::vector<float>& values, std::string& out);
void append_string_bytes(const std::vector<std::string>& strings, std::string& out);

// "[-1, 3, 224, 224]", "[2]": shapes in messages.
std::string shape_text(const std::vector<std::int64_t>& shape);

}  // namespace onevit::serve
