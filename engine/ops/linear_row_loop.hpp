// The linear op finished by a row loop of ours (ops/linear.hpp): every int8
// layer, and the f32 and bf16 layers with a GELU (LinearWeights::row_epilogue):
// s8 · s8 → s32 matmuls applying only the weight scales (static output
// scales), or f32/bf16 ones, each into an f32 block in the running thread's
// workspace, then the row loop over the block: each row times its activation scale (int8), plus the bias,
// the GELU, then stored (f32, bf16), quantized per row (s8, for whole rows)
// or per scale group (s8, qkv's heads at int8: ops/activation.hpp), or added
// to the residual. A tile runs as row chunks whose blocks fit the
// core's L2, so each block is read back from L2 (docs/performance.md).
//
// Why not oneDNN's epilogues: oneDNN 2.6's brgemm takes a per-row multiply
// only in a 3-D matmul, whose weights stay plain — slower than 2-D with
// blocked weights (docs/design.md); its GELU-erf post-op costs twice our loop.
#pragma once

#include <vector>

#include "ops/block_op.hpp"
#include "ops/linear.hpp"

namespace onevit {

class RowLoopLinear : public BlockOp {
public:
    RowLoopLinear(std::string name, const LinearWeights& weights, const dnnl::engine& engine, int rows, Activation src,
                  Activation dst);
    // The chunk size: an f32 block of at most this many floats (the core's L2).
    static std::size_t chunk_floats();

    int tasks() const override { return static_cast<int>(tasks_.size()); }
    void run(int task, TaskContext& context) override;

private:
    struct Chunk {
        Range rows;
        BoundPrimitive matmul;
        int block_class;
    };
    struct Task {
        Range columns;
        std::vector<Chunk> chunks;
    };
    Activation src_, dst_;
    int out_;
    const float* bias_;
    Epilogue epilogue_;
    std::vector<Task> tasks_;
};

}  // namespace onevit
