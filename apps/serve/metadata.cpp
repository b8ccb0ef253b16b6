#include "metadata.hpp"

#include <nlohmann/json.hpp>

namespace onevit::serve {

namespace {

using json = nlohmann::ordered_json;

json tensor(const std::string& name, const char* datatype, const std::vector<std::int64_t>& shape) {
    return {{"name", name}, {"datatype", datatype}, {"shape", shape}};
}

}  // namespace

const std::vector<std::string>& server_extensions() {
    static const std::vector<std::string> extensions = {"binary_tensor_data", "classification"};
    return extensions;
}

std::string server_metadata_json(const std::string& version) {
    return json{{"name", kServerName}, {"version", version}, {"extensions", server_extensions()}}.dump();
}

std::string model_metadata_json(const ModelSpec& spec) {
    const json metadata = {
        {"name", spec.name},
        {"versions", {kModelVersion}},
        {"platform", kPlatform},
        {"inputs", {tensor(kPixelInput, "FP32", spec.pixel_shape()), tensor(kImageInput, "BYTES", {-1})}},
        {"outputs", {tensor(spec.output_name(), "FP32", {-1, spec.outputs})}},
    };
    return metadata.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace onevit::serve
