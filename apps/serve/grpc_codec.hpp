// The Open Inference Protocol's gRPC messages (grpc_predict_v2.proto) to and
// from the transport-neutral request: the input's data from raw_input_contents
// (what Triton's clients send) or from the typed contents; the output always as
// raw_output_contents.
#pragma once

#include <string>
#include <vector>

#include "grpc_predict_v2.pb.h"
#include "image_pool.hpp"
#include "inference_request.hpp"
#include "model_spec.hpp"

namespace onevit::serve {

// Throws RequestError: bad_request saying what is wrong, unavailable when the
// pool has no room for the pixels. The model name and version are the service's to check.
InferenceRequest decode_grpc_infer(const ModelSpec& spec, const inference::ModelInferRequest& request, ImagePool& pool);

void encode_grpc_infer(const ModelSpec& spec, const InferenceRequest& request, std::vector<float> outputs,
                       inference::ModelInferResponse& response);

void fill_server_metadata(const std::string& version, inference::ServerMetadataResponse& response);
void fill_model_metadata(const ModelSpec& spec, inference::ModelMetadataResponse& response);

}  // namespace onevit::serve
