// Multi-head self-attention core: softmax(scale · q kᵀ + bias) v for every image and
// head, reading q, k and v out of the fused qkv activation and writing each
// head's output into its columns of the attention output.
//
// The work is split into tasks of (image, head, query rows); each task runs
// two single-threaded matmuls (q kᵀ with the scale as output scale, then p v)
// around a softmax loop of ours (ops/softmax.hpp), on dense blocks in the
// running thread's workspace: q, k and v are copied out of the qkv rows, and
// the output back (oneDNN 2.6 runs these matmuls with brgemm only on dense
// operands); one head's k and v are copied once for all of its tasks that a
// thread runs in a row.
//
// What differs from block to block (AttentionLayer) is applied as q and k are
// copied: each head's q and k rows normalised (q/k norm), then rotated
// (RoPE); and a per-head bias is added to the scores in the softmax's pass.
//
// The operands' types (AttentionTypes, chosen per precision by
// model/block_types.hpp) are those of the copies and the probabilities: q kᵀ
// from f32, bf16 or s8 q and k (s8: a scale per row, applied in the
// softmax's first pass); p v from f32 or bf16, or u8 probabilities times s8 v
// (v's scale per key folded into p before it is quantized per row, that row
// scale applied as the output is copied back). At int8, bf16 and f32 both
// matmuls run as a kernel of ours where the CPU has AVX-512 VNNI,
// AVX512_BF16 or AVX-512 (ops/int8_products.hpp, ops/bf16_products.hpp,
// ops/f32_products.hpp; AttentionKernel), as oneDNN's elsewhere: ours read
// f32 or bf16 q, k and v straight from qkv of their type (unless normed or
// rotated) and, at int8, s8 k and v, which the qkv linear writes
// with a scale per head's row where nothing transforms q and k (its s8 q
// copied as u8), write the scaled scores with their row maxima, and
// store the output rows themselves, each times p's row scale (u8 p, or f32
// or bf16 p as unnormalised exponentials: 1 / Σ e). The scores and the
// softmax are f32 at every precision. A
// task's query rows are capped so that its scores stay a fraction of the L2:
// memory per thread grows with the tokens, not their square.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ops/activation.hpp"
#include "ops/norm.hpp"
#include "ops/op.hpp"

namespace onevit {

struct AttentionShape {
    int batch = 0;
    int tokens = 0;
    int heads = 0;
    int head_dim = 0;
    float scale = 0.f;
    int inner() const { return heads * head_dim; }
};

// What q kᵀ and p v compute in. qk: f32, bf16 or s8; pv: f32, bf16, or u8
// (probabilities, with v s8).
struct AttentionTypes {
    Activation::Type qk = Activation::Type::f32;
    Activation::Type pv = Activation::Type::f32;
};

// Which kernel runs q kᵀ and p v: ours (ops/int8_products.hpp,
// ops/bf16_products.hpp, ops/f32_products.hpp) where the CPU has its
// instructions and head_dim is a multiple of 16, oneDNN's matmuls elsewhere.
enum class AttentionKernel { onednn, int8, bf16, f32 };
AttentionKernel attention_kernel(AttentionTypes types, const AttentionShape& shape);

// A block's own parts of attention, around the shared primitives.
struct AttentionLayer {
    std::optional<NormParams> q_norm, k_norm;  // over head_dim
    Rope rope = Rope::none;
    const float* rope_cos = nullptr;  // [tokens, head_dim], or [heads, tokens, head_dim] if rope_per_head
    const float* rope_sin = nullptr;
    bool rope_per_head = false;
    const float* bias = nullptr;  // [heads, tokens, tokens], added to the scaled scores; or none
    bool transforms_qk() const { return q_norm || k_norm || rope != Rope::none; }
};

// The modelled time of the attention phase on this many threads, in one core's
// multiply-accumulates, task overheads included: the cost its tiling minimises.
double modelled_attention_macs(const AttentionShape& shape, int threads);

class Attention : public Op {
public:
    // qkv: (batch·tokens) × 3·inner, rows [q | k | v], each head-major: f32,
    // bf16, or (s8 q kᵀ) s8 with a scale per head's q, k and v (scale_group head_dim).
    // out: (batch·tokens) × inner, f32 or bf16.
    Attention(const dnnl::engine& engine, int threads, const AttentionShape& shape, Activation qkv, Activation out,
              AttentionTypes types = {});

    // Creates and checks (ops/kernel_check.hpp) the descriptors the tasks of
    // a threads-thread plan would run, without buffers.
    static void plan(const dnnl::engine& engine, int threads, const AttentionShape& shape, AttentionTypes types);

    // Where the next run also copies out the probabilities: image b, head h,
    // query row r at probs + b·image_stride + (h·tokens + r)·tokens. Null: not.
    struct ProbabilitiesOut {
        float* probs;
        std::int64_t image_stride;
    };
    void copy_probabilities_to(const ProbabilitiesOut* where) { probabilities_ = where; }
    // The block the next run is: its norms, rotations and bias (null: none of them).
    void set_layer(const AttentionLayer* layer);

    int tasks() const override { return static_cast<int>(tasks_.size()); }
    void start() override;
    void run(int task, TaskContext& context) override;
    void bind(const ThreadMemory& memory) override;

private:
    struct Task {
        int unit;  // image · heads + head: tasks of one unit share k and v
        Range queries;
        int rows_class;  // index into the primitives for queries.size
        const char* q;   // the first query row, k and v: strided rows of qkv
        const char* k;
        const char* v;
        char* out;  // the first output row, strided
        // s8 qkv: the scales of q's first row, k's and v's, each 3 · heads apart; else null
        const float *q_scales, *k_scales, *v_scales;
    };
    // The blocks of a thread's workspace, at these byte offsets: dense, but k
    // and v where packed (packs_kv: copied dense into staged first).
    struct Layout {
        std::size_t q, k, k_packed, v, v_packed, staged, o, scores, probabilities, q_scales, k_scales, v_scales,
            p_scales, lane_maxima, row, bytes;
    };
    // One slot's primitives, bound to its workspace, per rows class.
    struct SlotSteps {
        std::vector<BoundPrimitive> scores;  // q kᵀ · scale → scores
        std::vector<BoundPrimitive> mix;     // probabilities v → o
        std::vector<BoundPrimitive> pack;    // staged k → k, staged v → v; or none
        char* workspace = nullptr;
        int unit = -1;  // whose k and v the blocks hold
    };
    void copy_out_probabilities(const Task& task, const char* probabilities) const;
    // Copies rows of q, k or v into a dense block of dst's type: through the
    // layer's norm and rotation (q and k), quantized per row (s8); s8 rows
    // with their scales (s8 qkv's, 3 · heads apart).
    void copy_in(const char* src, const float* scales, int rows, int first_token, int head,
                 const std::optional<NormParams>* norm, const Activation& dst, float* row) const;
    // s8 qkv's scales of rows of q, k or v (3 · heads apart) into dst, dense.
    void copy_scales(const float* scales, int rows, float* dst) const;
    // scaled: the scores are q kᵀ's scaled, with their lane maxima (ops/int8_products.hpp)
    void softmax(const Task& task, char* w, bool scaled) const;

    dnnl::engine engine_;
    AttentionShape shape_;
    AttentionTypes types_;
    Activation::Type qkv_type_, out_type_, v_type_;
    AttentionKernel kernel_;                     // ours: k and v packed for it
    std::size_t qkv_bytes_ = 0, out_bytes_ = 0;  // per element
    std::vector<Task> tasks_;
    std::vector<dnnl::matmul::primitive_desc> scores_pds_, mix_pds_;  // by rows class
    std::vector<dnnl::primitive> scores_primitives_, mix_primitives_;
    std::vector<dnnl::reorder::primitive_desc> pack_pds_;  // k, v; or none
    std::vector<dnnl::primitive> pack_primitives_;
    Layout layout_{};
    std::vector<SlotSteps> slots_;
    const ProbabilitiesOut* probabilities_ = nullptr;
    const AttentionLayer* layer_ = nullptr;
};

}  // namespace onevit
