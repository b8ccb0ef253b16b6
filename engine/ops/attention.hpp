// Multi-head self-attention core: softmax(scale · q kᵀ) v for every image and
// head, reading q, k and v out of the fused qkv activation and writing each
// head's output into its columns of the attention output.
//
// The work is split into tasks of (image, head, query rows); each task runs
// two single-threaded matmuls (q kᵀ with the scale as output scale, then p v)
// around a softmax loop of ours (ops/softmax.hpp) on buffers private to the executing
// thread. q, k and v are first copied out of the qkv rows into dense blocks,
// and the output is copied back: oneDNN 2.6 runs these matmuls with brgemm
// only on dense operands (strided views fall back to gemm:jit, ~25 % slower
// here), and one head's k and v are copied once for all of its tasks that a
// thread runs in a row.
//
// With bf16 operands (int8 precision, engine/model/block_types.hpp; at bf16 precision
// attention stays f32) q, k, v, the probabilities and the output are bf16 and
// the scores and softmax f32 (the probabilities are written as bf16 by the
// softmax, for the p v matmul).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/aligned_buffer.hpp"
#include "runtime/executor.hpp"
#include "ops/activation.hpp"
#include "ops/step.hpp"

namespace onevit {

struct AttentionShape {
    int batch = 0;
    int tokens = 0;
    int heads = 0;
    int head_dim = 0;
    float scale = 0.f;
    int inner() const { return heads * head_dim; }
};

// The modelled time of the attention phase on this many threads, in one core's
// multiply-accumulates, task overheads included: the cost its tiling minimises.
double modelled_attention_macs(const AttentionShape& shape, int threads);

class AttentionSteps {
public:
    // qkv: (batch·tokens) × 3·inner, rows [q | k | v], each head-major.
    // out: (batch·tokens) × inner. Each f32 or bf16.
    AttentionSteps(const dnnl::engine& engine, int threads, const AttentionShape& shape, Activation qkv,
                   Activation out);

    // Creates and checks (ops/kernel_check.hpp) the descriptors the tasks of
    // a threads-thread plan would run for qkv and out of these types, without buffers.
    static void plan(const dnnl::engine& engine, int threads, const AttentionShape& shape, Activation::Type qkv,
                     Activation::Type out);

    // Where a run also copies out the probabilities: image b, head h, query row
    // r at probs + b·image_stride + (h·tokens + r)·tokens.
    struct ProbabilitiesOut {
        float* probs;
        std::int64_t image_stride;
    };

    // Inside Executor::run; scratchpads: one per arena slot. probabilities:
    // null, or where to copy them (the steps run the same either way).
    void run(Executor& executor, std::vector<dnnl::memory>& scratchpads,
             const ProbabilitiesOut* probabilities = nullptr);
    std::size_t scratchpad_bytes() const { return scratchpad_bytes_; }

private:
    struct Task {
        int unit;   // image · heads + head: tasks of one unit share k and v
        Range queries;
        int rows_class;  // index into the primitives and buffers for queries.size
        const char* q;  // the first query row, k and v: strided rows of qkv
        const char* k;
        const char* v;
        char* out;  // the first output row, strided
    };
    struct TaskSteps {
        Step scores;   // q kᵀ · scale → scores
        Step mix;      // probabilities v → o
    };
    // One arena slot's dense blocks, and the steps bound to them per rows class.
    struct Workspace {
        AlignedBuffer q, k, v, o, scores, probabilities;  // probabilities: bf16 only (f32: in scores)
        std::vector<TaskSteps> steps;  // by rows class
        int unit = -1;  // whose k and v the blocks hold
    };
    void run_task(const Task& task, Workspace& workspace, dnnl::stream& stream, const dnnl::memory& scratchpad,
                  const ProbabilitiesOut* probabilities);
    void copy_out_probabilities(const Task& task, Workspace& workspace, const ProbabilitiesOut& where) const;

    AttentionShape shape_;
    Activation::Type qkv_type_;
    std::size_t qkv_bytes_ = 0, out_bytes_ = 0;  // per element
    std::vector<Task> tasks_;
    std::vector<Workspace> workspaces_;   // by slot
    std::size_t scratchpad_bytes_ = 0;
};

}  // namespace onevit
