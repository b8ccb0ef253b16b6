// oneDNN reports failures as dnnl::error; onevit's API promises onevit::Error.
#pragma once

#include <string>

#include <oneapi/dnnl/dnnl.hpp>

#include "onevit/error.hpp"

namespace onevit {

// f(), with a dnnl::error it throws as onevit::Error("<context>: oneDNN: …").
template <class F>
auto translating_dnnl_errors(const std::string& context, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const dnnl::error& e) {
        throw Error(context + ": oneDNN: " + e.what());
    }
}

}  // namespace onevit
