// The f32/bf16 linear op (ops/linear.hpp) of the layers without a GELU
// (those run as RowLoopLinear's): each tile one matmul with the epilogue fused as
// post-ops. A single column tile writes its rows in place; column tiles
// compute into a dense block in the running thread's workspace (oneDNN 2.6
// runs a strided output slice with gemm:jit, slower than brgemm) and copy it
// into place, adding the residual in the copy.
#pragma once

#include <optional>
#include <vector>

#include "ops/block_op.hpp"
#include "ops/linear.hpp"

namespace onevit {

class FloatLinear : public BlockOp {
public:
    FloatLinear(std::string name, const LinearWeights& weights, const dnnl::engine& engine, int rows, Activation src,
                Activation dst);
    // The copy of a column tile's block into its place in the output.
    static dnnl::reorder::primitive_desc copy_desc(const LinearWeights& weights, const dnnl::engine& engine, int rows,
                                                   Range columns);

    int tasks() const override { return static_cast<int>(tasks_.size()); }
    void run(int task, TaskContext& context) override;

private:
    struct Task {
        BoundPrimitive matmul;
        std::optional<BoundPrimitive> copy;  // column tiles: block → place
        int block_class = -1;                // index of the block shape, for column tiles
    };
    std::vector<Task> tasks_;
};

}  // namespace onevit
