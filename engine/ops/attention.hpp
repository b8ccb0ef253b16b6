// Multi-head self-attention core: softmax(scale · q kᵀ) v for every image and
// head, reading q, k and v straight out of the fused qkv activation through
// strided memory descriptors, and writing each head's output into its columns
// of the attention output — no transposes, no copies.
//
// The work is split into tasks of (image, head, query rows); each task runs
// three single-threaded primitives (q kᵀ matmul with the scale as output
// scale, in-place softmax, p v matmul) on a scores buffer private to the
// executing thread.
#pragma once

#include <vector>

#include "executor.hpp"
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

class AttentionSteps {
public:
    // qkv: (batch·tokens) × 3·inner, rows [q | k | v], each head-major.
    // out: (batch·tokens) × inner.
    AttentionSteps(const dnnl::engine& engine, int threads, const AttentionShape& shape, float* qkv, float* out);

    // Inside Executor::run; scratchpads: one per arena slot.
    void run(Executor& executor, std::vector<dnnl::memory>& scratchpads);
    std::size_t scratchpad_bytes() const { return scratchpad_bytes_; }

private:
    struct Task {
        Step scores;   // q kᵀ · scale → scores
        Step softmax;  // scores → probabilities, in place
        Step mix;      // probabilities v → out
        int rows_class;
    };
    std::vector<Task> tasks_;
    std::vector<float> scores_storage_;  // one tokens × tokens block per slot
    std::vector<std::vector<dnnl::memory>> scores_;  // [slot][rows class]
    std::size_t scratchpad_bytes_ = 0;
};

}  // namespace onevit
