// The JSON of an Open Inference Protocol inference request, parsed as it
// streams: each input's "data" (nested or flat) goes straight into a flat list
// of numbers or strings (4 bytes a number instead of a 16-byte JSON value and
// its bookkeeping: a 150,528-value image stays 0.6 MB), everything else into a
// JSON document for the codec to check.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace onevit::serve {

struct JsonTensorData {
    bool present = false;              // the input had a "data" member
    std::vector<float> numbers;        // JSON numbers, as the nearest float
    std::vector<std::string> strings;  // JSON strings
};

struct JsonRequest {
    nlohmann::json document;           // the request without its inputs' "data" members
    std::vector<JsonTensorData> data;  // one per element of "inputs", in order
};

// Throws RequestError (bad_request): malformed JSON, nesting deeper than
// kMaxJsonDepth, or data other than numbers and strings.
JsonRequest parse_json_request(std::string_view text);

inline constexpr std::size_t kMaxJsonDepth = 32;

}  // namespace onevit::serve
