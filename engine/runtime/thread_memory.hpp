// The memory each thread of an executor owns while it runs a task: a oneDNN
// scratchpad (every primitive is created in user scratchpad mode) and a
// workspace for the ops' own blocks (attention's per-head copies, a linear
// layer's output blocks). One per arena slot, sized for the largest need of
// the ops that share it, allocated once per Forward.
#pragma once

#include <cstddef>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "runtime/aligned_buffer.hpp"

namespace onevit {

class ThreadMemory {
public:
    ThreadMemory() = default;
    ThreadMemory(const dnnl::engine& engine, int slots, std::size_t scratchpad_bytes, std::size_t workspace_bytes);

    int slots() const { return static_cast<int>(scratchpads_.size()); }
    const dnnl::memory& scratchpad(int slot) const { return scratchpads_[slot]; }
    char* workspace(int slot) const { return reinterpret_cast<char*>(workspaces_[slot].data()); }
    std::size_t workspace_bytes() const { return workspace_bytes_; }

private:
    std::vector<dnnl::memory> scratchpads_;
    std::vector<AlignedBuffer> workspaces_;
    std::size_t workspace_bytes_ = 0;
};

}  // namespace onevit
