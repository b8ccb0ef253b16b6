// The Vision Transformer as plain structs: its weights (prepared once per
// model) and a Forward (primitives bound to activation buffers, planned once
// per batch size), whose run() reads top to bottom as the model does.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/aligned_buffer.hpp"
#include "model/block_types.hpp"
#include "runtime/executor.hpp"
#include "format/model_file.hpp"
#include "ops/attention.hpp"
#include "ops/attention_pool.hpp"
#include "ops/layer_norm.hpp"
#include "ops/linear.hpp"
#include "ops/patch_embed.hpp"
#include "ops/patch_extract.hpp"
#include "ops/quantize.hpp"
#include "runtime/weight_memory.hpp"
#include "onevit/model.hpp"

namespace onevit {

// A LayerNorm's parameters, read in place from the mapped file.
struct NormWeights {
    const float* scale = nullptr;  // [dim]
    const float* shift = nullptr;  // [dim]
};

// Dual patch norm: LayerNorm over each flattened patch, the embedding as a
// linear map, LayerNorm over each embedded patch.
struct NormedPatchEmbedWeights {
    NormWeights norm_in;  // [C·P·P]
    LinearWeights embed;  // [dim, C·P·P]
    NormWeights norm_out;  // [dim]
};

struct BlockWeights {
    NormWeights norm1;
    LinearWeights qkv;                  // [3·inner, dim]
    std::optional<LinearWeights> proj;  // [dim, inner]
    NormWeights norm2;
    LinearWeights fc1;                  // [mlp, dim], GELU fused
    LinearWeights fc2;                  // [dim, mlp], residual add fused
};

// What building the weights needs: the file, the executor whose threads reorder
// them, where the reordered weights go, and the threads of each executor that
// will run them (a stream's; loading may use more).
struct WeightLoader {
    const ModelFile& file;
    Executor& executor;
    std::shared_ptr<WeightMemory> memory;
    int run_threads;
    Precision precision;

    LinearWeights linear(const std::string& name, Epilogue epilogue, int typical_rows, LinearTypes types = {}) const;
};

struct VitWeights {
    Architecture arch;
    Precision precision;
    BlockTypes types;  // of the blocks' activations
    std::shared_ptr<WeightMemory> memory;  // the reordered linear weights live here
    std::optional<PatchEmbedWeights> patch_embed;               // a convolution, [dim, C, P, P]
    std::optional<NormedPatchEmbedWeights> normed_patch_embed;  // instead, if arch.patch_norm
    const float* prefix_tokens;         // [prefix, dim]; null without prefix tokens
    const float* pos_embed;             // [tokens, dim]
    std::optional<NormWeights> norm_pre;  // on every token before the first block
    std::vector<BlockWeights> blocks;
    std::optional<NormWeights> norm;       // final norm over every token
    std::optional<AttentionPoolWeights> attn_pool;  // the pooling, if arch.pool is map
    std::optional<NormWeights> head_norm;  // on the pooled vector
    std::optional<LinearWeights> pool_proj;  // [pool_proj, pooled], after head_norm: its output is the embedding
    std::optional<LinearWeights> head_hidden;  // [hidden, dim], GELU fused: the mlp head's first layer
    std::optional<LinearWeights> head;  // [classes, dim], or [classes, hidden] after head_hidden; none: no classifier
    std::optional<LinearWeights> head_dist;

    // Reorders the weights on loader's threads, for executors of run_threads threads.
    VitWeights(const ModelFile& file, Executor& loader, int run_threads, Precision precision = Precision::f32);

private:
    explicit VitWeights(const WeightLoader& load);
};

// Activation buffers and bound steps for one batch size. Not thread-safe:
// one run at a time per Forward (Model keeps a pool of them).
class Forward {
public:
    Forward(const VitWeights& weights, Executor& executor, int batch);
    int batch() const { return batch_; }

    // input: batch × C × H × W; logits: batch × arch.outputs() (without a head: the
    // embedding); features and attention: optional. Call inside Executor::run.
    void run(Executor& executor, const float* input, float* logits, Features* features, AttentionMaps* attention);

private:
    struct BlockSteps {
        LayerNormSteps norm1;
        LinearSteps qkv;
        std::optional<LinearSteps> proj;
        LayerNormSteps norm2;
        LinearSteps fc1;
        LinearSteps fc2;
    };
    struct NormedPatchEmbedSteps {
        LayerNormSteps norm_in;
        LinearSteps embed;
        LayerNormSteps norm_out;
    };
    void run_steps(Executor& executor, std::vector<Step>& steps);
    void run_row_chain(Executor& executor, std::initializer_list<StepList*> ops);
    void embed_patches(Executor& executor, const float* input);
    void assemble_tokens(Executor& executor);
    void add_attention_residual(Executor& executor);
    void pool(Executor& executor);
    void project_pooled(Executor& executor);
    const float* embedding() const { return pool_proj_ ? embedded_.data() : pooled_.data(); }
    void copy_embedding(Features& features) const;
    void average_distilled_heads(float* logits);
    void copy_features(Features& features) const;

    const VitWeights& w_;
    int batch_;
    int tokens_;
    BlockTypes types_;  // the weights', with fc1's output s8 where fc1 can quantize it
    // Activations; rows are (image, token), row-major.
    AlignedBuffer patch_rows_;  // patch_norm: flattened patches, (image, patch) × C·P·P
    AlignedBuffer patches_;  // embedded patches, (image, patch) × dim
    AlignedBuffer x_;        // residual stream, rows × dim
    AlignedBuffer h_;        // normalised x, rows × dim
    AlignedBuffer qkv_;      // rows × 3·inner
    AlignedBuffer attn_;     // rows × inner
    AlignedBuffer mlp_;      // rows × mlp
    // bf16/int8: the blocks' normalised x (rows × dim, bf16 or s8), apart from h_,
    // which the final norm writes as f32 in the same row chain as the last
    // block's norm2 (other tiles' rows of both would overlap in one buffer);
    // int8: its per-row scales, the s8 copy of attn_ and its scales, mlp_'s
    // scales, and, where fc1 writes bf16, mlp_'s s8 copy.
    AlignedBuffer h_low_, h_scales_, attn_s8_, attn_scales_, mlp_scales_, mlp_s8_;
    // The blocks' linear layers' output blocks, where they have any (int8;
    // column tiles): rows × the widest layer's outputs, shared (LinearBlocks).
    AlignedBuffer linear_blocks_;
    int linear_blocks_pitch_ = 0;
    AlignedBuffer pooled_;   // batch × dim (distilled: 2 × batch × dim)
    AlignedBuffer embedded_;  // batch × pool_proj: pool_proj's output
    AlignedBuffer hidden_;   // batch × head_hidden (mlp head)
    AlignedBuffer logits_;   // batch × classes (distilled: 2 × batch × classes)
    std::vector<dnnl::memory> scratchpads_;  // one per arena slot

    std::optional<PatchEmbedSteps> patch_embed_;
    std::optional<NormedPatchEmbedSteps> normed_patch_embed_;
    std::vector<BlockSteps> blocks_;
    std::optional<LayerNormSteps> norm_pre_;
    std::optional<LayerNormSteps> norm_;
    std::optional<AttentionPoolSteps> attn_pool_;
    std::optional<LayerNormSteps> head_norm_;
    std::optional<LinearSteps> pool_proj_;
    std::optional<LinearSteps> head_hidden_;
    AttentionSteps attention_;  // every block's: they share qkv_ and attn_
    std::optional<ConvertRowsSteps> quantize_attention_;  // int8: attn_ → attn_s8_, every block's
    std::optional<ConvertRowsSteps> quantize_hidden_;     // int8: mlp_ → mlp_s8_
    std::optional<LinearSteps> head_;
    std::optional<LinearSteps> head_dist_;
};

}  // namespace onevit
