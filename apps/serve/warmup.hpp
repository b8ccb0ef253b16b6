// Before the server says it is ready, every batch size the batcher can form
// (1 ... max_batch) is planned on every stream and kept for the model's
// lifetime (Model::plan), so that no request pays for planning one (primitive
// creation, activation buffers).
#pragma once

#include "onevit/model.hpp"

namespace onevit::serve {

void prepare_batch_sizes(const Model& model, int max_batch);

}  // namespace onevit::serve
