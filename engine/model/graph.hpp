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
    NormKind kind = NormKind::layer;
    int dim = 0;
    float eps = 0.f;
};

struct LinearDesc {
    std::string name;  // tensors name.weight [out, in] and, with a bias, name.bias [out]
    LinearShape shape;  // the activation types at the description's precision
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
    Activation::Type qkv = Activation::Type::f32, out = Activation::Type::f32;
    AttentionShape shape(int batch) const { return {batch, tokens, heads, head_dim, scale}; }
};

struct BlockDesc {
    NormDesc norm1;
    LinearDesc qkv;
    AttentionDesc attention;
    std::optional<LinearDesc> proj;  // none: the attention output is added to x as it is
    NormDesc norm2;
    LinearDesc fc1;  // its activation fused
    LinearDesc fc2;  // the residual add fused
    BlockTypes types;
};

// Attention pooling (ops/attention_pool.hpp).
struct AttentionPoolDesc {
    std::string query = "attn_pool.query";  // [dim]
    LinearDesc kv, proj;
    NormDesc norm;
    LinearDesc fc1, fc2;
    int heads = 0;
};

struct ModelGraph {
    Architecture arch;
    Precision precision = Precision::f32;

    std::optional<PatchEmbedDesc> patch_embed;  // a convolution; or, with dual patch norm:
    std::optional<NormDesc> patch_norm_in;      //   norm over each flattened patch,
    std::optional<LinearDesc> patch_linear;     //   the convolution's weights as a linear map,
    std::optional<NormDesc> patch_norm_out;     //   norm over each embedded patch
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
