// Opening a model file checked against the model's own description: the
// tensors its architecture needs (model/graph.hpp), and nothing else.
#pragma once

#include <string>

#include "format/model_file.hpp"

namespace onevit {

ModelFile open_model_file(const std::string& path);

}  // namespace onevit
