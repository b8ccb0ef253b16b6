// The f32/bf16 linear op (ops/linear.hpp): each tile one matmul with the
// epilogue fused as post-ops. A single column tile writes its rows in place;
// column tiles compute into a dense block in the running thread's workspace
// (oneDNN 2.6 runs a strided output slice with gemm:jit, slower than brgemm)
// and copy it into place, adding the residual in the copy.
#pragma once

#include <optional>
#include <vector>

#include "ops/linear.hpp"

namespace onevit {

class FloatLinear : public Op {
public:
    FloatLinear(std::string name, const LinearWeights& weights, const dnnl::engine& engine, int rows, Activation src,
                Activation dst);
    // The copy of a column tile's block into its place in the output.
    static dnnl::reorder::primitive_desc copy_desc(const LinearWeights& weights, const dnnl::engine& engine, int rows,
                                                   Range columns);

    std::string name() const override { return name_; }
    int tasks() const override { return static_cast<int>(tasks_.size()); }
    void run(int task, TaskContext& context) override;
    std::size_t scratchpad_bytes() const override { return scratchpad_bytes_; }
    std::size_t workspace_bytes() const override { return workspace_bytes_; }
    void bind(const ThreadMemory& memory) override;

private:
    struct Task {
        BoundPrimitive matmul;
        std::optional<BoundPrimitive> copy;  // column tiles: block → place
        int block_class = -1;                // index of the block shape, for column tiles
    };
    std::string name_;
    dnnl::engine engine_;
    std::vector<Task> tasks_;
    std::vector<dnnl::memory::desc> block_mds_;      // by block class
    std::vector<std::vector<dnnl::memory>> blocks_;  // by slot, then class: views of the workspace
    std::size_t scratchpad_bytes_ = 0;
    std::size_t workspace_bytes_ = 0;
};

}  // namespace onevit
