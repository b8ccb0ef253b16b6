// The one description of a model's layers: for an architecture and a
// precision, every layer's name, op, tensors and shapes, epilogue and
// activation types. Everything else is derived from it: the file reader's
// tensor checks (tensors()), the weights and the forward pass (model/vit),
// the plan sweep (model/forward_plan), the cost model (model/thread_plan) and
// the FLOP count (flops()). A new architecture variant is a new description
// here, the converter's mapping, and its op if it is new.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/block_types.hpp"
#include "onevit/model.hpp"
#include "onevit/model_info.hpp"
#include "ops/attention.hpp"
#include "ops/linear_weights.hpp"
#include "ops/norm.hpp"
#include "ops/patch_grid.hpp"

namespace onevit {

// A tensor the model file holds, by its canonical name (weights/FORMAT.md).
struct TensorDesc {
    std::string name;
    std::vector<std::int64_t> dims;
    bool linear_weight = false;  // may be stored as bf16 or int8
};

struct NormDesc {
    std::string name;  // tensors name.weight [dim] (and name.bias [dim] for LayerNorm)
    Norm kind = Norm::layer;
    int dim = 0;
    float eps = 0.f;
};

struct LinearDesc {
    std::string name;        // tensors name.weight [out, in] and, with a bias, name.bias [out]
    LinearShape shape;       // the activation types at the description's precision
    int rows_per_image = 1;  // the rows it multiplies per image: tokens, patches or 1
};

// The patch embedding: a convolution [dim, C, P, P] (+ bias [dim]) applied as
// the linear map [dim, C·P·P] on each flattened patch.
struct PatchEmbedDesc {
    std::string name = "patch_embed";
    PatchGrid grid;
    int dim = 0;
    bool bias = true;
    Activation::Type type = Activation::Type::f32;
};

struct AttentionDesc {
    int tokens = 0, heads = 0, head_dim = 0;
    float scale = 0.f;
    Activation::Type qkv = Activation::Type::f32, out = Activation::Type::f32;  // its input and output
    AttentionTypes types;                                                       // what it computes in
    std::optional<NormDesc> q_norm, k_norm;                                     // [head_dim], each head's q and k rows
    Rope rope = Rope::none;
    std::string rope_table;      // its tensors: rope_table.cos, .sin
    bool rope_per_head = false;  // [heads, tokens, head_dim], else [tokens, head_dim]
    std::string rel_pos_bias;    // a [heads, tokens, tokens] tensor, or empty
    AttentionShape shape(int batch) const { return {batch, tokens, heads, head_dim, scale}; }
};

// One transformer block (Architecture::block says how its parts connect).
struct BlockDesc {
    Block kind = Block::pre_norm;
    NormDesc norm1;
    LinearDesc qkv;
    AttentionDesc attention;
    std::optional<NormDesc> attn_norm;  // over the attention output, before proj
    std::optional<LinearDesc> proj;     // none: the attention output is added to x as it is
    std::optional<NormDesc> norm2;      // none in parallel blocks (fc1 reads norm1's output)
    LinearDesc fc1;                     // GELU fused; or, SwiGLU, gate and value rows
    bool swiglu = false;
    std::optional<NormDesc> mlp_norm;  // over the hidden, before fc2
    LinearDesc fc2;
    BlockTypes types;
    // The hidden between fc1 and fc2 is more than fc1's fused activation (ops/mlp_hidden.hpp).
    bool mlp_hidden_op() const { return swiglu || mlp_norm.has_value(); }
};

// Attention pooling (ops/attention_pool.hpp).
struct AttentionPoolDesc {
    std::string query = "attn_pool.query";  // [dim]
    LinearDesc kv, proj;
    NormDesc norm;
    LinearDesc fc1, fc2;
    int heads = 0;
    float scale = 0.f;
    bool prefix = false;  // attends over the prefix tokens too
};

struct ModelGraph {
    Architecture arch;
    Precision precision = Precision::f32;

    std::optional<PatchEmbedDesc> patch_embed;  // a convolution; or, with dual patch norm:
    std::optional<NormDesc> patch_norm_in;      //   norm over each flattened patch,
    std::optional<LinearDesc> patch_linear;     //   the convolution's weights as a linear map,
    std::optional<NormDesc> patch_norm_out;     //   norm over each embedded patch
    std::optional<NormDesc> embed_norm;         // over each embedded patch
    bool pos_embed = true;
    std::optional<std::string> rope_table;  // the model's one rotation table, if it has one
    std::optional<NormDesc> norm_pre;
    std::vector<BlockDesc> blocks;
    std::optional<NormDesc> norm;
    std::optional<AttentionPoolDesc> attn_pool;
    std::optional<NormDesc> head_norm;
    std::optional<LinearDesc> pool_proj;    // on the pooled vector (a pooler's tanh fused): the embedding
    std::optional<LinearDesc> head_hidden;  // the mlp head's first layer, GELU fused
    std::optional<LinearDesc> head;
    std::optional<LinearDesc> head_dist;

    // Every tensor the file holds, with its shape.
    std::vector<TensorDesc> tensors() const;
    // Every linear layer, in the order the forward pass runs them.
    std::vector<const LinearDesc*> linears() const;
    // Floating-point operations of one image's forward pass: the matrix products
    // (2 per multiply-add), as papers and timm's GMACs tables count them.
    double flops() const;
};

ModelGraph describe(const Architecture& arch, Precision precision = Precision::f32);

}  // namespace onevit
