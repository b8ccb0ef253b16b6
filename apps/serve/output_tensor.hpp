// The response's one output, as both codecs send it: the model's FP32 tensor
// (logits or embedding, [batch, outputs]), or with the classification extension
// a BYTES tensor [batch, k] of "prob:index:label" strings (Triton's format, with
// the softmax probability as the value, as `onevit classify` reports it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "inference_request.hpp"
#include "model_spec.hpp"

namespace onevit::serve {

struct OutputTensor {
    std::string name;
    std::string datatype;  // FP32 or BYTES
    std::vector<std::int64_t> shape;
    std::vector<float> values;         // FP32
    std::vector<std::string> strings;  // BYTES
};

// outputs: batch x spec.outputs floats from the model.
OutputTensor make_output_tensor(const ModelSpec& spec, const OutputRequest& request, int batch,
                                std::vector<float> outputs);

// The output parameter "classification": k >= 1, clamped to the classes; only for a classifier.
// Throws RequestError (bad_request) otherwise.
int checked_classification(const ModelSpec& spec, std::int64_t k);

}  // namespace onevit::serve
