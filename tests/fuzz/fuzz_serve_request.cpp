// libFuzzer: bytes -> onevit serve's HTTP inference request body (the Open
// Inference Protocol's JSON, with or without the binary tensor data extension)
// -> decode_http_infer against a small model (1 x 2 x 2 images, 3 classes, batch
// at most 4). The first byte picks the framing: even, the whole rest is JSON;
// odd, the next two bytes (little-endian, modulo the rest's size + 1) are the
// Inference-Header-Content-Length. A refusal must be a RequestError; a request
// that decodes must be consistent and its response must encode.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "http_infer_codec.hpp"
#include "request_error.hpp"
#include "tiny_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace onevit::serve;
    static const ModelSpec spec = tiny_spec();
    static ImagePool pool(spec.image_floats() * sizeof(float), spec.max_batch, 0);
    if (size < 1) return 0;
    std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::optional<std::size_t> header_length;
    if (data[0] & 1) {
        if (body.size() < 2) return 0;
        const std::size_t length = data[1] | (std::size_t(data[2]) << 8);
        body.remove_prefix(2);
        header_length = length % (body.size() + 1);
    }
    InferenceRequest request;
    try {
        request = decode_http_infer(spec, body, header_length, pool);
    } catch (const RequestError&) {
        return 0;  // refused with a message: what any bad request must get
    }
    const bool pixels = !request.pixels.empty();
    if (request.batch < 1 || request.batch > spec.max_batch) std::abort();
    if (pixels == !request.images.empty()) std::abort();  // exactly one input
    if (pixels && request.pixels.count() != request.batch) std::abort();
    if (!pixels && request.images.size() != std::size_t(request.batch)) std::abort();
    if (request.output.classification < 0 || request.output.classification > spec.outputs) std::abort();

    const std::vector<float> outputs(std::size_t(request.batch) * spec.outputs, 0.25f);
    const HttpInferResponse response = encode_http_infer(spec, request, outputs);
    const std::size_t json_size = response.header_length.value_or(response.body.size());
    if (json_size > response.body.size()) std::abort();
    if (!nlohmann::json::accept(response.body.substr(0, json_size))) std::abort();  // the response's JSON
    return 0;
}
