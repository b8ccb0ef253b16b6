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

// Raw FP32 bytes → floats; the byte count must be exactly `elements` floats.
std::vector<float> fp32_from_bytes(std::string_view bytes, std::size_t elements);
// Every value finite: NaN or infinity in an image is a client bug, not a picture.
void require_finite(const std::vector<float>& values);
// Raw BYTES → its elements; must hold exactly `elements` of them and nothing after.
std::vector<std::string> strings_from_bytes(std::string_view bytes, std::size_t elements);

void append_fp32_bytes(const std::vector<float>& values, std::string& out);
void append_string_bytes(const std::vector<std::string>& strings, std::string& out);

// "[-1, 3, 224, 224]", "[2]": shapes in messages.
std::string shape_text(const std::vector<std::int64_t>& shape);

}  // namespace onevit::serve
