// Before the server says it is ready, every batch size the batcher can form
// (1 ... max_batch) runs once on every stream, so that no request pays for
// planning one (primitive creation, activation buffers): the engine keeps what
// a (stream, batch size) planned for the next run of that size. The one place
// to switch to the engine's explicit pre-planning of batch sizes once it has one.
#pragma once

#include "onevit/model.hpp"

namespace onevit::serve {

void prepare_batch_sizes(const Model& model, int max_batch);

}  // namespace onevit::serve
