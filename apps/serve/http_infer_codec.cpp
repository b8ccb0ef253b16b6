#include "http_infer_codec.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "json_request.hpp"
#include "output_tensor.hpp"
#include "request_error.hpp"
#include "tensor_data.hpp"

namespace onevit::serve {

namespace {

using json = nlohmann::json;

[[noreturn]] void refuse(const std::string& message) { throw RequestError(Status::bad_request, message); }

const json* member(const json& object, const char* key) {
    const auto found = object.find(key);
    return found == object.end() ? nullptr : &*found;
}

const json& object_member(const json& object, const char* key, const std::string& where) {
    const json* value = member(object, key);
    if (!value) refuse(fmt::format("{} has no \"{}\"", where, key));
    return *value;
}

std::string string_member(const json& object, const char* key, const std::string& where) {
    const json& value = object_member(object, key, where);
    if (!value.is_string()) refuse(fmt::format("{}.{} must be a string, got {}", where, key, value.type_name()));
    return value.get<std::string>();
}

std::vector<std::int64_t> shape_member(const json& object, const std::string& where) {
    const json& value = object_member(object, "shape", where);
    if (!value.is_array()) refuse(fmt::format("{}.shape must be an array of integers", where));
    std::vector<std::int64_t> shape;
    for (const json& dim : value) {
        if (!dim.is_number_integer()) refuse(fmt::format("{}.shape must be an array of integers", where));
        shape.push_back(dim.get<std::int64_t>());
    }
    return shape;
}

// A "parameters" object, or an empty one.
const json& parameters_of(const json& object, const std::string& where) {
    static const json none = json::object();
    const json* parameters = member(object, "parameters");
    if (!parameters) return none;
    if (!parameters->is_object()) refuse(fmt::format("{}.parameters must be an object", where));
    return *parameters;
}

std::optional<bool> bool_parameter(const json& parameters, const char* key, const std::string& where) {
    const json* value = member(parameters, key);
    if (!value) return std::nullopt;
    if (!value->is_boolean()) refuse(fmt::format("{}.parameters.{} must be true or false", where, key));
    return value->get<bool>();
}

std::optional<std::int64_t> integer_parameter(const json& parameters, const char* key, const std::string& where) {
    const json* value = member(parameters, key);
    if (!value) return std::nullopt;
    if (!value->is_number_integer()) refuse(fmt::format("{}.parameters.{} must be an integer", where, key));
    return value->get<std::int64_t>();
}

// The binary data after the JSON: bytes in memory, or the slots the transport read them into.
class BinaryData {
public:
    explicit BinaryData(std::string_view bytes) : bytes_(bytes), size_(bytes.size()) {}
    BinaryData(ImageSlots& slots, std::size_t size) : slots_(&slots), size_(size) {}

    std::size_t size() const { return size_; }

    // The next n bytes, FP32 pixels of `elements` values, as images in slots.
    ImageSlots take_fp32(std::size_t n, std::size_t elements, ImagePool& pool) {
        if (!slots_) return fp32_from_bytes(take_bytes(n), elements, pool);
        check_fp32_size(n, elements);
        refuse_after(n);
        size_ = 0;
        return std::move(*slots_);  // read into place: one image a slot
    }

    std::vector<std::string> take_strings(std::size_t n, std::size_t elements) {
        if (!slots_) return strings_from_bytes(take_bytes(n), elements);
        refuse_after(n);
        size_ = 0;
        return strings_from_bytes(slots_->copy_bytes(n), elements);
    }

    // Data left after the inputs': refused.
    void refuse_after(std::size_t taken) const {
        if (size_ > taken)
            refuse(fmt::format("{} bytes of binary data after the inputs' binary_data_size", size_ - taken));
    }

private:
    std::string_view take_bytes(std::size_t n) {
        const std::string_view taken = bytes_.substr(0, n);
        bytes_.remove_prefix(taken.size());
        size_ -= taken.size();
        return taken;
    }

    std::string_view bytes_;
    ImageSlots* slots_ = nullptr;
    std::size_t size_;
};

// The one input's data into the request: from the binary section or from JSON.
void read_input(const ModelSpec& spec, const json& input, JsonTensorData& data, BinaryData& binary, ImagePool& pool,
                InferenceRequest& request) {
    const std::string where = "inputs[0]";
    if (!input.is_object()) refuse(where + " must be an object");
    const std::string name = string_member(input, "name", where);
    const CheckedInput checked =
        check_input(spec, name, string_member(input, "datatype", where), shape_member(input, where));
    request.batch = checked.batch;
    const std::optional<std::int64_t> binary_size =
        integer_parameter(parameters_of(input, where), "binary_data_size", where);
    if (binary_size) {
        if (data.present) refuse(where + " has both data and binary_data_size");
        if (*binary_size < 0 || std::uint64_t(*binary_size) > binary.size())
            refuse(fmt::format("{}: binary_data_size {} but {} bytes of binary data follow the JSON", where,
                               *binary_size, binary.size()));
        if (checked.kind == InputKind::pixels)
            request.pixels = binary.take_fp32(std::size_t(*binary_size), checked.elements, pool);
        else
            request.images = binary.take_strings(std::size_t(*binary_size), checked.elements);
    } else {
        if (!data.present) refuse(where + " has neither data nor parameters.binary_data_size");
        if (checked.kind == InputKind::pixels) {
            if (!data.strings.empty()) refuse(where + ".data holds strings; " + kPixelInput + " is FP32");
            if (data.numbers.size() != checked.elements)
                refuse(fmt::format("{}.data holds {} values, the shape needs {}", where, data.numbers.size(),
                                   checked.elements));
            require_finite(data.numbers.data(), data.numbers.size());
            request.pixels = pool.copy_of(data.numbers.data(), data.numbers.size() * sizeof(float));
            return;
        }
        if (!data.numbers.empty()) refuse(where + ".data holds numbers; " + kImageInput + " is BYTES");
        if (data.strings.size() != checked.elements)
            refuse(fmt::format("{}.data holds {} strings, the shape needs {}", where, data.strings.size(),
                               checked.elements));
        request.images = std::move(data.strings);
    }
    if (checked.kind == InputKind::pixels) require_finite(request.pixels);
}

OutputRequest read_outputs(const ModelSpec& spec, const json& document, bool binary_by_default) {
    OutputRequest output;
    output.binary = binary_by_default;
    const json* outputs = member(document, "outputs");
    if (!outputs) return output;
    if (!outputs->is_array()) refuse("outputs must be an array");
    if (outputs->size() > 1)
        refuse(fmt::format("outputs names {} tensors; the model has one, '{}'", outputs->size(), spec.output_name()));
    for (const json& requested : *outputs) {
        const std::string where = "outputs[0]";
        if (!requested.is_object()) refuse(where + " must be an object");
        const std::string name = string_member(requested, "name", where);
        if (name != spec.output_name())
            refuse(fmt::format("unknown output '{}' (the model's output: {})", name, spec.output_name()));
        const json& parameters = parameters_of(requested, where);
        output.binary = bool_parameter(parameters, "binary_data", where).value_or(binary_by_default);
        if (const auto k = integer_parameter(parameters, "classification", where))
            output.classification = checked_classification(spec, *k);
    }
    return output;
}

InferenceRequest decode(const ModelSpec& spec, std::string_view text, BinaryData& binary, ImagePool& pool) {
    JsonRequest parsed = parse_json_request(text);
    const json& document = parsed.document;
    if (!document.is_object()) refuse("the request must be a JSON object");

    InferenceRequest request;
    if (const json* id = member(document, "id")) {
        if (!id->is_string()) refuse("id must be a string");
        request.id = id->get<std::string>();
    }
    const json& parameters = parameters_of(document, "the request");
    const bool binary_output = bool_parameter(parameters, "binary_data_output", "the request").value_or(false);

    const json& inputs = object_member(document, "inputs", "the request");
    if (!inputs.is_array()) refuse("inputs must be an array");
    if (inputs.size() != 1)
        refuse(fmt::format("the request has {} inputs; give exactly one: {} (FP32) or {} (BYTES)", inputs.size(),
                           kPixelInput, kImageInput));
    parsed.data.resize(1);
    read_input(spec, inputs[0], parsed.data[0], binary, pool, request);
    binary.refuse_after(0);
    request.output = read_outputs(spec, document, binary_output);
    return request;
}

void refuse_header_length(std::size_t header_length, std::size_t body_size) {
    refuse(
        fmt::format("Inference-Header-Content-Length {} is more than the body's {} bytes", header_length, body_size));
}

}  // namespace

InferenceRequest decode_http_infer(const ModelSpec& spec, std::string_view body,
                                   std::optional<std::size_t> header_length, ImagePool& pool) {
    std::string_view text = body;
    std::string_view bytes;
    if (header_length) {
        if (*header_length > body.size()) refuse_header_length(*header_length, body.size());
        text = body.substr(0, *header_length);
        bytes = body.substr(*header_length);
    }
    BinaryData binary(bytes);
    return decode(spec, text, binary, pool);
}

InferenceRequest decode_http_infer(const ModelSpec& spec, RequestBody& body, std::optional<std::size_t> header_length,
                                   ImagePool& pool) {
    if (!body.split) return decode_http_infer(spec, body.text, header_length, pool);
    // The transport split the body at header_length: the JSON is all of text.
    if (header_length && *header_length > body.text.size())
        refuse_header_length(*header_length, body.text.size() + body.binary_bytes);
    BinaryData binary(body.binary, body.binary_bytes);
    return decode(spec, body.text, binary, pool);
}

HttpInferResponse encode_http_infer(const ModelSpec& spec, const InferenceRequest& request,
                                    std::vector<float> outputs) {
    OutputTensor tensor = make_output_tensor(spec, request.output, request.batch, std::move(outputs));
    json output = {{"name", tensor.name}, {"datatype", tensor.datatype}, {"shape", tensor.shape}};
    std::string binary;
    if (request.output.binary) {
        if (tensor.datatype == "FP32")
            append_fp32_bytes(tensor.values, binary);
        else
            append_string_bytes(tensor.strings, binary);
        output["parameters"] = {{"binary_data_size", binary.size()}};
    } else if (tensor.datatype == "FP32") {
        // Each float widened to double: JSON's number prints it exactly, so clients read back the same float.
        json data = json::array();
        data.get_ref<json::array_t&>().reserve(tensor.values.size());
        for (float v : tensor.values) data.push_back(double(v));
        output["data"] = std::move(data);
    } else {
        output["data"] = std::move(tensor.strings);
    }
    json response = {{"model_name", spec.name}, {"model_version", kModelVersion}};
    if (!request.id.empty()) response["id"] = request.id;
    response["outputs"] = json::array({std::move(output)});

    HttpInferResponse encoded;
    encoded.body = response.dump(-1, ' ', false, json::error_handler_t::replace);
    if (request.output.binary) {
        encoded.header_length = encoded.body.size();
        encoded.body += binary;
    }
    return encoded;
}

std::string error_body(const std::string& message) {
    return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace onevit::serve
