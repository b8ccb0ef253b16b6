#include "runtime/thread_memory.hpp"

#include <algorithm>

namespace onevit {

ThreadMemory::ThreadMemory(const dnnl::engine& engine, int slots, std::size_t scratchpad_bytes,
                           std::size_t workspace_bytes)
    : workspace_bytes_(workspace_bytes) {
    const dnnl::memory::desc scratchpad_md({std::int64_t(std::max<std::size_t>(scratchpad_bytes, 64))},
                                           dnnl::memory::data_type::u8, dnnl::memory::format_tag::x);
    for (int slot = 0; slot < slots; ++slot) {
        scratchpads_.emplace_back(scratchpad_md, engine);
        workspaces_.emplace_back((workspace_bytes + sizeof(float) - 1) / sizeof(float));
    }
}

}  // namespace onevit
