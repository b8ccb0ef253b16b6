#include "model_spec.hpp"

namespace onevit::serve {

ModelSpec ModelSpec::of(const ModelInfo& info, const std::string& name, int max_batch) {
    ModelSpec spec;
    spec.name = name;
    spec.channels = info.arch.channels;
    spec.height = info.arch.image_height;
    spec.width = info.arch.image_width;
    spec.outputs = info.arch.outputs();
    spec.classifier = info.arch.num_classes > 0;
    spec.labels = info.labels;
    spec.max_batch = max_batch;
    return spec;
}

std::string model_name_from_path(const std::string& path) {
    const std::size_t slash = path.find_last_of('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    const std::size_t dot = name.find_last_of('.');
    if (dot != std::string::npos && dot > 0) name.erase(dot);
    return name;
}

}  // namespace onevit::serve
