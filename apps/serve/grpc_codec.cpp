#include "grpc_codec.hpp"

#include <fmt/format.h>

#include "metadata.hpp"
#include "output_tensor.hpp"
#include "request_error.hpp"
#include "tensor_data.hpp"

namespace onevit::serve {

namespace {

[[noreturn]] void refuse(const std::string& message) { throw RequestError(Status::bad_request, message); }

bool has_other_contents(const inference::InferTensorContents& c, bool fp32) {
    return c.bool_contents_size() || c.int_contents_size() || c.int64_contents_size() || c.uint_contents_size() ||
           c.uint64_contents_size() || c.fp64_contents_size() ||
           (fp32 ? c.bytes_contents_size() : c.fp32_contents_size());
}

void read_contents(const CheckedInput& checked, const inference::InferTensorContents& contents, ImagePool& pool,
                   InferenceRequest& request) {
    const bool pixels = checked.kind == InputKind::pixels;
    if (has_other_contents(contents, pixels))
        refuse(pixels ? "inputs[0].contents: pixel_values is FP32, give fp32_contents"
                      : "inputs[0].contents: image is BYTES, give bytes_contents");
    if (pixels) {
        if (std::size_t(contents.fp32_contents_size()) != checked.elements)
            refuse(fmt::format("inputs[0].contents holds {} values, the shape needs {}", contents.fp32_contents_size(),
                               checked.elements));
        request.pixels = pool.copy_of(contents.fp32_contents().data(), checked.elements * sizeof(float));
    } else {
        if (std::size_t(contents.bytes_contents_size()) != checked.elements)
            refuse(fmt::format("inputs[0].contents holds {} strings, the shape needs {}",
                               contents.bytes_contents_size(), checked.elements));
        request.images.assign(contents.bytes_contents().begin(), contents.bytes_contents().end());
    }
}

OutputRequest read_outputs(const ModelSpec& spec, const inference::ModelInferRequest& request) {
    OutputRequest output;
    if (request.outputs_size() > 1)
        refuse(fmt::format("outputs names {} tensors; the model has one, '{}'", request.outputs_size(),
                           spec.output_name()));
    for (const auto& requested : request.outputs()) {
        if (requested.name() != spec.output_name())
            refuse(fmt::format("unknown output '{}' (the model's output: {})", requested.name(), spec.output_name()));
        const auto found = requested.parameters().find("classification");
        if (found == requested.parameters().end()) continue;
        if (found->second.parameter_choice_case() != inference::InferParameter::kInt64Param)
            refuse("outputs[0].parameters.classification must be an int64_param");
        output.classification = checked_classification(spec, found->second.int64_param());
    }
    return output;
}

}  // namespace

InferenceRequest decode_grpc_infer(const ModelSpec& spec, const inference::ModelInferRequest& message,
                                   ImagePool& pool) {
    if (message.inputs_size() != 1)
        refuse(fmt::format("the request has {} inputs; give exactly one: {} (FP32) or {} (BYTES)",
                           message.inputs_size(), kPixelInput, kImageInput));
    const auto& input = message.inputs(0);
    const std::vector<std::int64_t> shape(input.shape().begin(), input.shape().end());
    const CheckedInput checked = check_input(spec, input.name(), input.datatype(), shape);

    InferenceRequest request;
    request.id = message.id();
    request.batch = checked.batch;
    if (message.raw_input_contents_size() > 0) {
        if (message.raw_input_contents_size() != 1)
            refuse(fmt::format("raw_input_contents has {} entries for 1 input", message.raw_input_contents_size()));
        if (input.has_contents()) refuse("inputs[0] has both contents and raw_input_contents");
        const std::string& bytes = message.raw_input_contents(0);
        if (checked.kind == InputKind::pixels)
            request.pixels = fp32_from_bytes(bytes, checked.elements, pool);
        else
            request.images = strings_from_bytes(bytes, checked.elements);
    } else if (input.has_contents()) {
        read_contents(checked, input.contents(), pool, request);
    } else {
        refuse("inputs[0] has no data: give raw_input_contents or contents");
    }
    if (checked.kind == InputKind::pixels) require_finite(request.pixels);
    request.output = read_outputs(spec, message);
    return request;
}

void encode_grpc_infer(const ModelSpec& spec, const InferenceRequest& request, std::vector<float> outputs,
                       inference::ModelInferResponse& response) {
    OutputTensor tensor = make_output_tensor(spec, request.output, request.batch, std::move(outputs));
    response.set_model_name(spec.name);
    response.set_model_version(kModelVersion);
    response.set_id(request.id);
    auto* output = response.add_outputs();
    output->set_name(tensor.name);
    output->set_datatype(tensor.datatype);
    for (std::int64_t dim : tensor.shape) output->add_shape(dim);
    std::string* raw = response.add_raw_output_contents();
    if (tensor.datatype == "FP32")
        append_fp32_bytes(tensor.values, *raw);
    else
        append_string_bytes(tensor.strings, *raw);
}

void fill_server_metadata(const std::string& version, inference::ServerMetadataResponse& response) {
    response.set_name(kServerName);
    response.set_version(version);
    for (const std::string& extension : server_extensions()) response.add_extensions(extension);
}

void fill_model_metadata(const ModelSpec& spec, inference::ModelMetadataResponse& response) {
    response.set_name(spec.name);
    response.add_versions(kModelVersion);
    response.set_platform(kPlatform);
    const auto add = [](auto* tensor, const std::string& name, const char* datatype,
                        const std::vector<std::int64_t>& shape) {
        tensor->set_name(name);
        tensor->set_datatype(datatype);
        for (std::int64_t dim : shape) tensor->add_shape(dim);
    };
    add(response.add_inputs(), kPixelInput, "FP32", spec.pixel_shape());
    add(response.add_inputs(), kImageInput, "BYTES", {-1});
    add(response.add_outputs(), spec.output_name(), "FP32", {-1, spec.outputs});
}

}  // namespace onevit::serve
