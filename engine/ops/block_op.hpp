// An op whose tasks compute into dense blocks in the running thread's
// workspace before they finish them (a linear op's column tiles, RowLoopLinear's
// row chunks): one oneDNN memory per block shape (its class) and thread, each
// a view of that thread's workspace from its start.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ops/op.hpp"

namespace onevit {

class BlockOp : public Op {
public:
    void bind(const ThreadMemory& memory) override;

protected:
    BlockOp(std::string name, const dnnl::engine& engine) : Op(std::move(name)), engine_(engine) {}

    // The class of a rows × columns block that md describes, added if new (the
    // workspace grows to hold it).
    int block_class(int rows, int columns, const dnnl::memory::desc& md);
    // That block in the workspace of the thread in `slot`.
    const dnnl::memory& workspace_block(int slot, int block_class) const { return views_[slot][block_class]; }

private:
    dnnl::engine engine_;
    std::map<std::pair<int, int>, int> classes_;    // (rows, columns) → class
    std::vector<dnnl::memory::desc> mds_;           // by class
    std::vector<std::vector<dnnl::memory>> views_;  // by slot, then class
};

}  // namespace onevit
