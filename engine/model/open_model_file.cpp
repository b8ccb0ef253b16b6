#include "model/open_model_file.hpp"

#include "model/graph.hpp"

namespace onevit {

ModelFile open_model_file(const std::string& path) {
    return ModelFile::open(path, [](const Architecture& arch) {
        ExpectedTensors expected;
        for (TensorDesc& t : describe(arch).tensors()) expected[t.name] = {std::move(t.dims), t.linear_weight};
        return expected;
    });
}

}  // namespace onevit
