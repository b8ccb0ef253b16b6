#include "format/metadata.hpp"

#include <algorithm>
#include <cmath>

#include "onevit/error.hpp"

namespace onevit {

namespace {

// Sanity bounds: far above any real ViT, low enough that no product overflows.
constexpr std::uint32_t kMaxEntries = 4096;
constexpr std::uint32_t kMaxKeyLength = 256;
constexpr std::uint32_t kMaxStringLength = 4096;
constexpr std::uint32_t kMaxLabels = 1'000'000;
constexpr std::uint32_t kMaxWidth = 65536;
constexpr std::uint32_t kMaxDepth = 1024;
constexpr std::uint32_t kMaxImageSide = 16384;
constexpr std::uint32_t kMaxTokens = 1 << 20;
constexpr std::uint32_t kMaxPrefixTokens = 64;  // class + distillation + register tokens (real models: ≤ 5)

enum ValueType : std::uint32_t { kU32 = 0, kF32 = 1, kString = 2, kF32Array = 3, kStringArray = 4 };

bool valid_key(const std::string& key) {
    if (key.empty()) return false;
    for (char c : key)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) return false;
    return true;
}

Metadata::Value read_value(ByteReader& in, const std::string& key) {
    Metadata::Value v;
    v.type = in.u32("metadata type");
    const char* field = key.c_str();
    switch (v.type) {
        case kU32:
            v.u32 = in.u32(field);
            break;
        case kF32:
            v.f32 = in.f32(field);
            break;
        case kString:
            v.string = in.string(field, kMaxStringLength);
            break;
        case kF32Array: {
            const std::uint32_t n = in.u32(field);
            if (n > kMaxEntries || n * 4ull > in.remaining()) in.fail(key + ": bad array length");
            for (std::uint32_t i = 0; i < n; ++i) v.f32_array.push_back(in.f32(field));
            break;
        }
        case kStringArray: {
            const std::uint32_t n = in.u32(field);
            if (n > kMaxLabels || n * 4ull > in.remaining()) in.fail(key + ": bad array length");
            v.string_array.reserve(n);
            for (std::uint32_t i = 0; i < n; ++i) v.string_array.push_back(in.string(field, kMaxStringLength));
            break;
        }
        default:
            in.fail(key + ": unknown metadata type " + std::to_string(v.type));
    }
    return v;
}

}  // namespace

Metadata Metadata::read(ByteReader& in, std::string context) {
    std::map<std::string, Value> entries;
    const std::uint32_t count = in.u32("metadata count");
    if (count > kMaxEntries) in.fail("metadata count " + std::to_string(count) + " is too large");
    for (std::uint32_t i = 0; i < count; ++i) {
        std::string key = in.string("metadata key", kMaxKeyLength);
        if (!valid_key(key)) in.fail("invalid metadata key \"" + key + "\"");
        if (entries.count(key)) in.fail("duplicate metadata key " + key);
        Value v = read_value(in, key);
        entries.emplace(std::move(key), std::move(v));
    }
    return Metadata(std::move(entries), std::move(context));
}

const Metadata::Value& Metadata::get(const std::string& key, std::uint32_t type) const {
    auto it = entries_.find(key);
    if (it == entries_.end()) fail("missing metadata key " + key);
    if (it->second.type != type) fail("metadata key " + key + " has the wrong type");
    return it->second;
}

void Metadata::fail(const std::string& message) const { throw Error(context_ + ": " + message); }

int Metadata::u32(const std::string& key, std::uint32_t min, std::uint32_t max) const {
    const std::uint32_t v = get(key, kU32).u32;
    if (v < min || v > max)
        fail(key + " = " + std::to_string(v) + " is outside [" + std::to_string(min) + ", " + std::to_string(max) +
             "]");
    return static_cast<int>(v);
}

int Metadata::optional_u32(const std::string& key, std::uint32_t min, std::uint32_t max, int absent) const {
    return entries_.count(key) ? u32(key, min, max) : absent;
}

float Metadata::positive_f32(const std::string& key) const {
    const float v = get(key, kF32).f32;
    if (!std::isfinite(v) || v <= 0.f) fail(key + " = " + std::to_string(v) + " is not a positive number");
    return v;
}

const std::string& Metadata::string(const std::string& key) const { return get(key, kString).string; }
const std::vector<float>& Metadata::f32_array(const std::string& key) const { return get(key, kF32Array).f32_array; }

const std::vector<std::string>* Metadata::optional_string_array(const std::string& key) const {
    if (!entries_.count(key)) return nullptr;
    return &get(key, kStringArray).string_array;
}

namespace {

// The features of a version 2 file (weights/FORMAT.md, "Features"), each with
// what it sets; a file naming any other is refused, so no reader runs a model
// it would get wrong.
void read_features(const Metadata& m, Architecture& a) {
    const std::vector<std::string>* features = m.optional_string_array("arch.features");
    if (!features) m.fail("missing metadata key arch.features (version 2 files list their features)");
    a.features = *features;
    for (const std::string& f : a.features) {
        if (std::count(a.features.begin(), a.features.end(), f) > 1) m.fail("feature '" + f + "' is listed twice");
        if (f == "rms_norm")
            a.norm = Norm::rms;
        else if (f == "embed_norm")
            a.embed_norm = true;
        else if (f == "no_pos_embed")
            a.pos_embed = false;
        else if (f == "qk_norm")
            a.qk_norm = true;
        else if (f == "rope")
            a.rope = m.choice("arch.rope_layout", kRopeNames);
        else if (f == "attn_norm")
            a.attn_norm = true;
        else if (f == "swiglu")
            a.mlp = Mlp::swiglu;
        else if (f == "mlp_norm")
            a.mlp_norm = true;
        else if (f == "post_norm")
            a.block = Block::post_norm;
        else if (f == "parallel")
            a.block = Block::parallel;
        else if (f == "rel_pos_bias")
            a.rel_pos_bias = true;
        else if (f == "attn_pool_shape") {
            a.pool_heads = m.u32("arch.pool_heads", 1, 1024);
            a.pool_mlp_dim = m.u32("arch.pool_mlp_dim", 1, 4 * kMaxWidth);
            a.pool_prefix = m.flag("arch.pool_prefix");
        } else {
            m.fail("feature '" + f + "' is not supported by this version of onevit");
        }
    }
    if (std::count(a.features.begin(), a.features.end(), "rope")) {
        if (a.rope == Rope::none) m.fail("arch.rope_layout = \"none\" with feature 'rope'");
        a.rope_per_block = m.flag("arch.rope_per_block");
    }
    // Both set the block's kind, so the last listed would win: checked by name.
    if (std::count(a.features.begin(), a.features.end(), "post_norm") &&
        std::count(a.features.begin(), a.features.end(), "parallel"))
        m.fail("features 'post_norm' and 'parallel' exclude each other");
}

}  // namespace

Architecture read_architecture(const Metadata& m, std::uint32_t version) {
    Architecture a;
    a.family = m.string("arch.family");
    a.image_height = m.u32("arch.image_height", 1, kMaxImageSide);
    a.image_width = m.u32("arch.image_width", 1, kMaxImageSide);
    a.channels = m.u32("arch.channels", 1, 4);
    a.patch_size = m.u32("arch.patch_size", 1, 1024);
    a.dim = m.u32("arch.dim", 1, kMaxWidth);
    a.depth = m.u32("arch.depth", 1, kMaxDepth);
    a.heads = m.u32("arch.heads", 1, 1024);
    a.head_dim = m.u32("arch.head_dim", 1, kMaxWidth);
    a.mlp_dim = m.u32("arch.mlp_dim", 1, 4 * kMaxWidth);
    a.num_classes = m.u32("arch.num_classes", 0, kMaxLabels);
    a.prefix_tokens = m.u32("arch.prefix_tokens", 0, kMaxPrefixTokens);
    a.norm_eps = m.positive_f32("arch.norm_eps");
    a.gelu = m.choice("arch.gelu", kGeluNames);
    a.attn_scale = m.positive_f32("arch.attn_scale");
    a.qkv_bias = m.flag("arch.qkv_bias");
    a.attn_proj = m.flag("arch.attn_proj");
    a.final_norm = m.flag("arch.final_norm");
    a.pool = m.choice("arch.pool", kPoolNames);
    a.head_norm = m.flag("arch.head_norm");
    a.head = m.choice("arch.head", kHeadNames);
    a.head_hidden = a.head == Head::mlp ? m.u32("arch.head_hidden", 1, 4 * kMaxWidth) : 0;
    a.patch_norm = m.optional_u32("arch.patch_norm", 0, 1, 0) == 1;
    a.class_token = m.optional_u32("arch.class_token", 0, 1, 1) == 1;
    a.norm_pre = m.optional_u32("arch.norm_pre", 0, 1, 0) == 1;
    a.pool_proj = m.optional_u32("arch.pool_proj", 0, 4 * kMaxWidth, 0);
    if (m.has("arch.pool_proj_act")) {
        if (a.pool_proj == 0) m.fail("arch.pool_proj_act needs arch.pool_proj");
        a.pool_proj_act = m.choice("arch.pool_proj_act", kPoolProjActNames);
    }
    if (version >= 2)
        read_features(m, a);
    else if (m.optional_string_array("arch.features"))
        m.fail("arch.features needs model file version 2");

    if (a.image_height % a.patch_size || a.image_width % a.patch_size)
        m.fail("image " + std::to_string(a.image_height) + "x" + std::to_string(a.image_width) +
               " is not a multiple of patch_size " + std::to_string(a.patch_size));
    if (static_cast<std::uint64_t>(a.tokens()) > kMaxTokens) m.fail("too many tokens");
    if (static_cast<std::uint64_t>(a.heads) * a.head_dim > kMaxWidth) m.fail("heads x head_dim too large");
    if (!a.attn_proj && a.inner_dim() != a.dim) m.fail("arch.attn_proj = 0 needs heads x head_dim == dim");
    if (a.head == Head::distilled && (a.prefix_tokens != 2 || !a.class_token))
        m.fail("a distilled head needs 2 prefix tokens, the first a class token");
    if ((a.head == Head::none) != (a.num_classes == 0))
        m.fail("arch.head = \"none\" goes with arch.num_classes = 0, and only with it");
    if (a.class_token && a.prefix_tokens < 1) m.fail("arch.class_token = 1 needs arch.prefix_tokens >= 1");
    if ((a.pool == Pool::token || a.pool == Pool::token_and_mean_patches) && !a.class_token)
        m.fail(std::string("arch.pool = \"") + to_string(a.pool) + "\" needs a class token");
    if (a.pool == Pool::token_and_mean_patches && (a.head_norm || a.head == Head::distilled))
        m.fail("arch.pool = \"token_and_mean_patches\" goes with neither a head norm nor a distilled head");
    if (a.pool_proj > 0 && a.head == Head::distilled) m.fail("arch.pool_proj does not go with a distilled head");
    if (a.pool == Pool::map && a.dim % a.attn_pool_heads())
        m.fail("arch.pool = \"map\" needs dim divisible by the pooling heads");
    if (a.pool == Pool::map && a.pool_heads == 0 && a.inner_dim() != a.dim)
        m.fail("arch.pool = \"map\" needs heads x head_dim == dim");
    if (a.rope != Rope::none && a.head_dim % 2)
        m.fail("RoPE needs an even head_dim, got " + std::to_string(a.head_dim));
    if (a.mlp == Mlp::swiglu && a.block == Block::parallel)
        m.fail("features 'swiglu' and 'parallel' together are not supported");
    return a;
}

Preprocessing read_preprocessing(const Metadata& m, int channels) {
    Preprocessing p;
    p.resize = m.choice("preprocess.resize", kResizeNames);
    p.resize_size = m.u32("preprocess.resize_size", 0, kMaxImageSide);
    if (p.resize != Resize::direct && p.resize_size == 0) m.fail("preprocess.resize_size is 0");
    p.interpolation = m.choice("preprocess.interpolation", kInterpolationNames);
    p.mean = m.f32_array("preprocess.mean");
    p.std = m.f32_array("preprocess.std");
    if (p.mean.size() != static_cast<std::size_t>(channels) || p.std.size() != p.mean.size())
        m.fail("preprocess.mean/std need one value per channel (" + std::to_string(channels) + ")");
    for (std::size_t c = 0; c < p.mean.size(); ++c)
        if (!std::isfinite(p.mean[c]) || !std::isfinite(p.std[c]) || p.std[c] <= 0.f)
            m.fail("preprocess.mean/std has a non-finite value or a std <= 0");
    return p;
}

namespace {

// Labels and the embedding's description are printed as they are: a newline
// or an escape sequence in one could forge lines of output or drive the terminal.
void check_printable(const Metadata& m, const std::string& text, const std::string& what) {
    for (const unsigned char c : text)
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            m.fail(what + " contains a control character (byte " + std::to_string(c) + ")");
}

}  // namespace

std::vector<std::string> read_labels(const Metadata& m, int num_classes) {
    const auto* labels = m.optional_string_array("labels");
    if (!labels) return {};
    if (labels->size() != static_cast<std::size_t>(num_classes))
        m.fail("labels has " + std::to_string(labels->size()) + " names for " + std::to_string(num_classes) +
               " classes");
    for (std::size_t k = 0; k < labels->size(); ++k)
        check_printable(m, (*labels)[k], "labels[" + std::to_string(k) + "]");
    return *labels;
}

std::string read_embedding_description(const Metadata& m) {
    if (!m.has("embedding")) return {};
    const std::string& text = m.string("embedding");
    check_printable(m, text, "embedding");
    return text;
}

}  // namespace onevit
