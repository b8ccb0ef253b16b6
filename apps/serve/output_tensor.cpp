#include "output_tensor.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "onevit/model.hpp"
#include "request_error.hpp"

namespace onevit::serve {

int checked_classification(const ModelSpec& spec, std::int64_t k) {
    if (!spec.classifier)
        throw RequestError(Status::bad_request,
                           "the classification parameter needs a classifier; this model outputs its embedding");
    if (k < 1) throw RequestError(Status::bad_request, fmt::format("classification must be at least 1, got {}", k));
    return static_cast<int>(std::min<std::int64_t>(k, spec.outputs));
}

OutputTensor make_output_tensor(const ModelSpec& spec, const OutputRequest& request, int batch,
                                std::vector<float> outputs) {
    OutputTensor tensor;
    tensor.name = spec.output_name();
    if (request.classification == 0) {
        tensor.datatype = "FP32";
        tensor.shape = {batch, spec.outputs};
        tensor.values = std::move(outputs);
        return tensor;
    }
    const int k = request.classification;
    tensor.datatype = "BYTES";
    tensor.shape = {batch, k};
    for (int image = 0; image < batch; ++image)
        for (const Prediction& p :
             top_k(outputs.data() + std::size_t(image) * spec.outputs, spec.outputs, k, spec.labels))
            // {} of a float: its shortest text that reads back as the same float.
            tensor.strings.push_back(p.label.empty() ? fmt::format("{}:{}", p.prob, p.index)
                                                     : fmt::format("{}:{}:{}", p.prob, p.index, p.label));
    return tensor;
}

}  // namespace onevit::serve
