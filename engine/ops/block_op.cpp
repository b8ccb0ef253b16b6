#include "ops/block_op.hpp"

#include <algorithm>

namespace onevit {

int BlockOp::block_class(int rows, int columns, const dnnl::memory::desc& md) {
    const auto [found, added] = classes_.emplace(std::make_pair(rows, columns), static_cast<int>(mds_.size()));
    if (added) {
        mds_.push_back(md);
        workspace_bytes_ = std::max(workspace_bytes_, md.get_size());
    }
    return found->second;
}

void BlockOp::bind(const ThreadMemory& memory) {
    views_.clear();
    for (int slot = 0; slot < memory.slots(); ++slot) {
        std::vector<dnnl::memory> views;
        for (const dnnl::memory::desc& md : mds_) views.emplace_back(md, engine_, memory.workspace(slot));
        views_.push_back(std::move(views));
    }
}

}  // namespace onevit
