// The Open Inference Protocol's metadata, as HTTP/REST JSON: the server's
// (name, version, extensions) and the model's (inputs, outputs, datatypes, shapes).
#pragma once

#include <string>
#include <vector>

#include "model_spec.hpp"

namespace onevit::serve {

inline constexpr const char* kServerName = "onevit";
inline constexpr const char* kPlatform = "onevit";
// binary_tensor_data: Inference-Header-Content-Length bodies; classification: top-k strings.
const std::vector<std::string>& server_extensions();

std::string server_metadata_json(const std::string& version);
std::string model_metadata_json(const ModelSpec& spec);

}  // namespace onevit::serve
