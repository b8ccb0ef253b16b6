#include "ops/kernel_check.hpp"

namespace onevit {

namespace {
std::atomic<long> checked_count{0};
std::atomic<long> fallback_count{0};

std::string dims_string(const dnnl::memory::desc& md) {
    std::string s;
    for (dnnl::memory::dim d : md.dims()) s += (s.empty() ? "" : "x") + std::to_string(d);
    return s.empty() ? "-" : s;
}
}  // namespace

bool is_reference_kernel(const std::string& impl_info) { return impl_info.rfind("ref", 0) == 0; }

long kernels_checked() { return checked_count.load(); }
long reference_fallbacks() { return fallback_count.load(); }
void count_reference_fallback() { ++fallback_count; }

void check_kernel(const std::string& impl_info, const char* op, const dnnl::memory::desc& src) {
    ++checked_count;
    if (is_reference_kernel(impl_info))
        throw ReferenceKernel(std::string("planning error: oneDNN has only its reference kernel (") + impl_info +
                              ") for the " + op + " tile with source " + dims_string(src));
}

}  // namespace onevit
