// The Vision Transformer as plain structs, built from its description
// (model/graph.hpp): its weights, prepared once per model, and a Forward —
// the ops bound to one batch size's activation buffers — whose run() reads
// top to bottom as the model does.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "format/model_file.hpp"
#include "model/graph.hpp"
#include "onevit/model.hpp"
#include "ops/attention.hpp"
#include "ops/attention_pool.hpp"
#include "ops/linear.hpp"
#include "ops/norm.hpp"
#include "ops/patch_embed.hpp"
#include "ops/schedule.hpp"
#include "runtime/aligned_buffer.hpp"
#include "runtime/executor.hpp"
#include "runtime/thread_memory.hpp"
#include "runtime/weight_memory.hpp"

namespace onevit {

struct BlockWeights {
    NormParams norm1;
    LinearWeights qkv;         // [3·inner, dim]
    AttentionLayer attention;  // q/k norms, rotation tables, score bias
    std::optional<NormParams> attn_norm;
    std::optional<LinearWeights> proj;  // [dim, inner]
    std::optional<NormParams> norm2;
    LinearWeights fc1;  // [mlp, dim], or [2·mlp, dim] (SwiGLU)
    std::optional<NormParams> mlp_norm;
    LinearWeights fc2;  // [dim, mlp]
};

struct VitWeights {
    ModelGraph graph;
    std::shared_ptr<WeightMemory> memory;  // the reordered linear weights live here
    std::optional<PatchEmbedWeights> patch_embed;
    std::optional<NormParams> patch_norm_in;
    std::optional<LinearWeights> patch_linear;
    std::optional<NormParams> patch_norm_out;
    std::optional<NormParams> embed_norm;
    const float* prefix_tokens = nullptr;  // [prefix, dim]; null without prefix tokens
    const float* pos_embed = nullptr;      // [tokens, dim]; null without an absolute table
    std::optional<NormParams> norm_pre;
    std::vector<BlockWeights> blocks;
    std::optional<NormParams> norm;
    std::optional<AttentionPoolWeights> attn_pool;
    std::optional<NormParams> head_norm;
    std::optional<LinearWeights> pool_proj, head_hidden, head, head_dist;

    // Reorders the weights on loader's threads, for executors of run_threads threads.
    VitWeights(const ModelFile& file, Executor& loader, int run_threads, Precision precision = Precision::f32);
};

// Activation buffers and bound ops for one batch size. Not thread-safe: one
// run at a time per Forward (Model keeps a pool of them).
class Forward {
public:
    // threads: what the ops are planned for; the executor's by default (an
    // emulated run plans for more than its one-thread executor has).
    Forward(const VitWeights& weights, Executor& executor, int batch, int threads = 0);
    int batch() const { return batch_; }

    // input: batch × C × H × W; output: batch × arch.outputs() (without a head:
    // the embedding); features and attention: optional. Call inside Executor::run.
    // emulated: time each phase instead of running it in parallel (ops/schedule.hpp).
    void run(Executor& executor, const float* input, float* output, Features* features, AttentionMaps* attention,
             EmulatedRun* emulated = nullptr);

private:
    // One block's ops before its attention and after it, in order (null: none);
    // each list chains with its neighbours' where their row tiles agree.
    struct BlockOps {
        std::vector<Op*> before, after;
    };
    Op* own(std::unique_ptr<Op> op);
    void build_stem(const dnnl::engine& engine);
    void build_blocks(const dnnl::engine& engine);
    BlockOps block_ops(const dnnl::engine& engine, const BlockDesc& d, const BlockWeights& b);
    void build_head(const dnnl::engine& engine);
    // qkv's output, attention's input, of types_.qkv (s8: with qkv_scales_).
    Activation qkv() const;
    void copy_features(Features& features) const;
    void copy_embedding(Features& features) const;
    // The classifier's input: pool_proj's output, or the pooled vector.
    const float* embedding() const { return pool_proj_ ? embedded_.data() : pooled_.data(); }

    const VitWeights& w_;
    const Architecture& arch_;
    int batch_, threads_, tokens_, rows_;
    BlockTypes types_;  // the description's, with fc1's output s8 where fc1 can quantize it

    // Activations; rows are (image, token), row-major.
    AlignedBuffer patches_;  // embedded patches, (image, patch) × dim
    AlignedBuffer x_;        // residual stream, rows × dim
    AlignedBuffer h_;        // normalised x (f32), rows × dim: the final norm's output
    AlignedBuffer qkv_;      // rows × 3·inner
    AlignedBuffer attn_;     // rows × inner: the attention output
    AlignedBuffer mlp_;      // rows × fc1's outputs
    AlignedBuffer branch_;   // post-norm blocks: proj's and fc2's output before its norm, rows × dim
    // bf16/int8: the blocks' normalised x (bf16 or s8), apart from h_ (the
    // final norm writes h_ in the same row chain as the last block's norm2);
    // int8: its row scales. Where proj's and fc2's inputs differ from attn_
    // and mlp_ (quantized, normalised, gated): attn_in_ and mlp_in_, and their
    // row scales at int8.
    AlignedBuffer h_low_, h_scales_, attn_in_, attn_scales_, mlp_in_, mlp_scales_;
    // s8 qkv (int8, BlockTypes): its scales, rows × 3·heads, one per head's q, k and v.
    AlignedBuffer qkv_scales_;
    AlignedBuffer pooled_;    // batch × pooled width (distilled: 2 × batch × dim)
    AlignedBuffer embedded_;  // batch × pool_proj: pool_proj's output, the embedding
    AlignedBuffer hidden_;    // batch × head_hidden (mlp head)
    AlignedBuffer logits_;    // batch × classes (distilled: 2 × batch × classes)

    std::vector<std::unique_ptr<Op>> ops_;  // every op, owned here
    std::optional<PatchEmbedding> patch_embedding_;
    AlignedBuffer patch_rows_;  // dual patch norm: the flattened patches
    ExtractPatches* extract_ = nullptr;
    Op *patch_norm_in_ = nullptr, *patch_linear_ = nullptr, *patch_norm_out_ = nullptr;
    Op *embed_norm_ = nullptr, *tokens_op_ = nullptr, *norm_pre_ = nullptr;
    std::vector<BlockOps> blocks_;
    Attention* attention_ = nullptr;  // every block's (set_layer): they share qkv_ and attn_
    Op *norm_ = nullptr, *pool_ = nullptr, *head_norm_ = nullptr, *pool_proj_ = nullptr, *head_hidden_ = nullptr,
       *head_ = nullptr, *head_dist_ = nullptr;
    std::optional<AttentionPool> attn_pool_;
    ThreadMemory thread_memory_;
};

}  // namespace onevit
