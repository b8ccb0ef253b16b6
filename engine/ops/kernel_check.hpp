// Every primitive descriptor onevit creates passes through checked(): when no
// optimised implementation accepts a descriptor, oneDNN 2.6 silently picks its
// reference loop — tens to hundreds of times slower (docs/design.md, "No
// reference kernels"). For
// onevit that is a planning error, never a slow path: checked() throws
// ReferenceKernel, planners that have another tiling catch it and take that
// one (counted: reference_fallbacks()), and tests assert that neither happens.
//
// Which names count: oneDNN's reference implementations are the ones named
// "ref…" (`ref:any`, `ref_int8:any`, …), for every primitive kind. Not counted:
// `simple_layer_normalization:any` (2.6.3's name for its layer norm, which runs
// jit-generated statistics and data kernels: it is what onevit gets, at every
// shape), `simple:any` reorders (specialised loops) and `gemm:jit` matmuls
// (jit, if slower than brgemm for strided outputs).
#pragma once

#include <atomic>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>

#include "onevit/error.hpp"

namespace onevit {

class ReferenceKernel : public Error {
public:
    using Error::Error;
};

bool is_reference_kernel(const std::string& impl_info);

// Primitive descriptors checked, and tilings given up because of a reference
// kernel, since the process started (the plan sweep test reports both).
long kernels_checked();
long reference_fallbacks();
void count_reference_fallback();

// Throws ReferenceKernel ("planning error: …") naming op and the problem.
void check_kernel(const std::string& impl_info, const char* op, const dnnl::memory::desc& src);

template <class PrimitiveDesc>
PrimitiveDesc checked(PrimitiveDesc pd, const char* op) {
    check_kernel(pd.impl_info_str(), op, pd.src_desc());
    return pd;
}

}  // namespace onevit
