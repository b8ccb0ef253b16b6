// The Open Inference Protocol's HTTP/REST inference request and response: JSON,
// with Triton's binary tensor data extension (the JSON is the first
// Inference-Header-Content-Length bytes of the body, the tensors' bytes follow
// in input order, each input saying its "binary_data_size") and classification
// extension ("classification": K on the output).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "image_pool.hpp"
#include "inference_request.hpp"
#include "model_spec.hpp"
#include "request_body.hpp"

namespace onevit::serve {

// header_length: the Inference-Header-Content-Length header, if given. A binary
// tensor the transport read into slots becomes the request's pixels as it is;
// pixels given any other way are copied into slots of `pool`. Throws
// RequestError: bad_request saying what is wrong, unavailable when the pool is full.
InferenceRequest decode_http_infer(const ModelSpec& spec, RequestBody& body, std::optional<std::size_t> header_length,
                                   ImagePool& pool);
// A body in memory (tests, the fuzzer).
InferenceRequest decode_http_infer(const ModelSpec& spec, std::string_view body,
                                   std::optional<std::size_t> header_length, ImagePool& pool);

struct HttpInferResponse {
    std::string body;
    std::optional<std::size_t> header_length;  // set when binary data follows the JSON
};
// outputs: request.batch x spec.outputs floats.
HttpInferResponse encode_http_infer(const ModelSpec& spec, const InferenceRequest& request, std::vector<float> outputs);

// The protocol's error body: {"error": "message"}.
std::string error_body(const std::string& message);

}  // namespace onevit::serve
