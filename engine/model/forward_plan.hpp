// The primitives a Forward would create, without a model: every descriptor its
// ops would create for a batch on an executor of some threads, created and
// checked (ops/kernel_check.hpp) with no weights or activation buffers — so a
// test can sweep families, sizes, batches and thread counts in seconds.
#pragma once

#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "onevit/model.hpp"
#include "onevit/model_info.hpp"

namespace onevit {

// The precisions whose ops can be planned; the plan sweep test covers each.
// Every precision: bf16 and int8 plan their typed linears and attention.
std::vector<Precision> planned_precisions();

// Inside Executor::run (primitives are created single-threaded). Throws
// ReferenceKernel on the first reference implementation. Plans every layer of
// the model's description (model/graph.hpp) as VitWeights and Forward build it.
void plan_forward(const Architecture& arch, Precision precision, const dnnl::engine& engine, int threads, int batch);

}  // namespace onevit
