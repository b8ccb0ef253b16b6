// What a model file says about the network: architecture, preprocessing, labels.
// Field meanings are those of weights/FORMAT.md.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace onevit {

// The data type a model computes in. f32: as trained. bf16 and int8: the
// precisions CPUs with AVX512_BF16 / VNNI / AMX run 2x and 4x faster, at a
// measured cost in accuracy (README, "Precision").
enum class Precision { f32, bf16, int8 };

enum class Gelu { erf, tanh, quick };  // quick: x·sigmoid(1.702x), CLIP's QuickGELU
// map: attention pooling (attn_pool); token_and_mean_patches: concat(token 0, mean of the patch
// tokens), 2·dim wide (Hugging Face Dinov2ForImageClassification's classifier input).
enum class Pool { token, mean, mean_patches, map, token_and_mean_patches };
enum class Head { linear, distilled, mlp, none };  // none: no classifier (num_classes 0)
// The activation after the pooled vector's linear layer (pool_proj): none (CLIP's projection) or
// tanh (a pooler / pre-logits layer: Hugging Face ViTModel, torchvision's heads.pre_logits).
enum class PoolProjAct { none, tanh };
enum class Norm { layer, rms };  // every norm of the model: LayerNorm, or RMSNorm (no shift)
// pre_norm: x += attn(norm1(x)); x += mlp(norm2(x)). post_norm: x += norm1(attn(x));
// x += norm2(mlp(x)). parallel: x += attn(norm1(x)) + mlp(norm1(x)).
enum class Block { pre_norm, post_norm, parallel };
enum class Mlp { gelu, swiglu };  // swiglu: silu(gate) ⊙ value, gate and value from one fc1
// Rotary positions on q and k: pairs (2i, 2i+1), or (i, i + head_dim/2) (rotate_half).
enum class Rope { none, interleaved, half };

struct Architecture {
    std::string family;
    int image_height = 0;
    int image_width = 0;
    int channels = 0;
    int patch_size = 0;
    int dim = 0;
    int depth = 0;
    int heads = 0;
    int head_dim = 0;
    int mlp_dim = 0;
    int num_classes = 0;
    int prefix_tokens = 0;
    float norm_eps = 0.f;
    Gelu gelu = Gelu::erf;
    float attn_scale = 0.f;
    bool qkv_bias = true;
    bool attn_proj = true;
    bool final_norm = true;
    Pool pool = Pool::token;
    bool head_norm = false;
    Head head = Head::linear;
    int head_hidden = 0;      // hidden width of an mlp head
    bool patch_norm = false;  // LayerNorms before and after the patch embedding
    bool class_token = true;  // prefix token 0 is a class token (else the prefix holds only registers)
    bool norm_pre = false;    // a LayerNorm on the tokens before the first block
    // Width of a linear layer on the pooled vector, after head_norm (0: none); its output,
    // after pool_proj_act, is the embedding and the classifier's input.
    int pool_proj = 0;
    PoolProjAct pool_proj_act = PoolProjAct::none;
    // The 2025-26 layers (weights/FORMAT.md, "Features"); the defaults are a version 1 file's.
    std::vector<std::string> features;  // the file's feature names, as it lists them
    Norm norm = Norm::layer;
    Block block = Block::pre_norm;
    Mlp mlp = Mlp::gelu;
    bool embed_norm = false;  // a norm on each embedded patch
    bool pos_embed = true;    // an absolute position table
    bool qk_norm = false;     // q and k normalised per head
    Rope rope = Rope::none;
    bool rope_per_block = false;  // a rotation table per block and head (mixed RoPE)
    bool attn_norm = false;       // a norm on the attention output before proj
    bool mlp_norm = false;        // a norm on the MLP hidden before fc2
    bool rel_pos_bias = false;    // a per-head table added to the attention scores
    int pool_heads = 0;           // attention pooling's heads, MLP width; 0: heads, mlp_dim
    int pool_mlp_dim = 0;
    bool pool_prefix = false;  // attention pooling attends over the prefix tokens too

    int grid_height() const { return image_height / patch_size; }
    int grid_width() const { return image_width / patch_size; }
    int patch_tokens() const { return grid_height() * grid_width(); }
    int patch_dim() const { return channels * patch_size * patch_size; }
    int tokens() const { return prefix_tokens + patch_tokens(); }
    int inner_dim() const { return heads * head_dim; }
    // Width of the pooled vector.
    int pooled_dim() const { return pool == Pool::token_and_mean_patches ? 2 * dim : dim; }
    // Width of the embedding (Features::embedding): the pooled vector, or pool_proj's output.
    int embed_dim() const { return pool_proj > 0 ? pool_proj : pooled_dim(); }
    int attn_pool_heads() const { return pool_heads > 0 ? pool_heads : heads; }
    int attn_pool_mlp_dim() const { return pool_mlp_dim > 0 ? pool_mlp_dim : mlp_dim; }
    // Floats per image of the model's output: the logits, or, without a classifier
    // (num_classes 0), the embedding, as timm's forward gives with num_classes=0.
    int outputs() const { return num_classes > 0 ? num_classes : embed_dim(); }
};

// squash_then_crop: both sides to resize_size (aspect not kept), then the centre crop (timm crop_mode 'squash').
enum class Resize { shorter_then_crop, direct, squash_then_crop };
enum class Interpolation { nearest, bilinear, bicubic };

struct Preprocessing {
    Resize resize = Resize::shorter_then_crop;
    int resize_size = 0;  // shorter side target, for shorter_then_crop
    Interpolation interpolation = Interpolation::bicubic;
    std::vector<float> mean;  // one per channel, on pixels scaled to [0, 1]
    std::vector<float> std;
};

struct ModelInfo {
    Architecture arch;
    Preprocessing preprocess;
    std::vector<std::string> labels;  // empty, or arch.num_classes names
    // What the embedding is in the source library's terms (informational; may be empty),
    // e.g. "CLIPModel.get_image_features".
    std::string embedding;
    std::int64_t parameter_count = 0;
    // The precision the file was written for: how its linear weights are stored
    // (weights/convert.py --dtype; the most compact type where they differ).
    Precision stored_precision = Precision::f32;
};

const char* to_string(Precision);

const char* to_string(Gelu);
const char* to_string(Pool);
const char* to_string(Head);
const char* to_string(PoolProjAct);
const char* to_string(Norm);
const char* to_string(Block);
const char* to_string(Mlp);
const char* to_string(Rope);
const char* to_string(Resize);
const char* to_string(Interpolation);

}  // namespace onevit
