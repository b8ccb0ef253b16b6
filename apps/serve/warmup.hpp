// Before the server says it is ready, every batch size the batcher can form
// (1 ... max_batch) is planned on every stream and kept for the model's
// lifetime (Model::plan), so that no request pays for planning one (primitive
// creation, activation buffers), then run once on every stream, so that no
// request pays for first touching that memory either: the server's resident
// memory is at its plateau when it is ready, not growing under its first load.
#pragma once

#include "onevit/model.hpp"

namespace onevit::serve {

void prepare_batch_sizes(const Model& model, int max_batch);

}  // namespace onevit::serve
