// Small, fully controlled inputs for the hostile-input tests and the fuzz seed
// corpora: .ovit model files built field by field (weights/FORMAT.md), with
// valid or deliberately broken checksums, and tiny PNG and JPEG images.
//
// Header-only; users link zlib (and libpng / libjpeg for the images).
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace onevit::synthetic {

using Bytes = std::vector<std::uint8_t>;

inline void put_u32(Bytes& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_u64(Bytes& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_f32(Bytes& out, float f) {
    std::uint32_t v;
    std::memcpy(&v, &f, 4);
    put_u32(out, v);
}
inline void put_string(Bytes& out, const std::string& s) {
    put_u32(out, static_cast<std::uint32_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
}
inline void set_u32(Bytes& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b.at(at + i) = static_cast<std::uint8_t>(v >> (8 * i));
}
inline void set_u64(Bytes& b, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) b.at(at + i) = static_cast<std::uint8_t>(v >> (8 * i));
}
inline std::uint64_t get_u64(const Bytes& b, std::size_t at) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{b.at(at + i)} << (8 * i);
    return v;
}

inline std::uint32_t crc32_of(const std::uint8_t* data, std::size_t size) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (size > 0) {
        const uInt chunk = static_cast<uInt>(size < (1u << 30) ? size : (1u << 30));
        crc = crc32(crc, data, chunk);
        data += chunk;
        size -= chunk;
    }
    return static_cast<std::uint32_t>(crc);
}

// Offsets of the fixed header fields.
constexpr std::size_t kHeaderCrcAt = 12, kDataOffsetAt = 16, kDataCrcAt = 24, kFixedHeader = 32;

// Recomputes both checksums of a .ovit image whose data_offset lies inside it,
// so that only the validation of values can object. Returns false (and leaves
// the bytes alone) when data_offset does not allow it.
inline bool reseal(Bytes& b) {
    if (b.size() < kFixedHeader) return false;
    const std::uint64_t data_offset = get_u64(b, kDataOffsetAt);
    if (data_offset < kFixedHeader || data_offset > b.size()) return false;
    set_u32(b, kDataCrcAt, crc32_of(b.data() + data_offset, b.size() - data_offset));
    set_u32(b, kHeaderCrcAt, crc32_of(b.data() + 16, data_offset - 16));
    return true;
}

// One metadata entry, already encoded after its key: u32 type, then the value.
struct Entry {
    std::string key;
    Bytes value;  // type + value bytes
};

inline Entry u32_entry(std::string key, std::uint32_t v) {
    Entry e{std::move(key), {}};
    put_u32(e.value, 0);
    put_u32(e.value, v);
    return e;
}
inline Entry f32_entry(std::string key, float v) {
    Entry e{std::move(key), {}};
    put_u32(e.value, 1);
    put_f32(e.value, v);
    return e;
}
inline Entry string_entry(std::string key, const std::string& v) {
    Entry e{std::move(key), {}};
    put_u32(e.value, 2);
    put_string(e.value, v);
    return e;
}
inline Entry f32_array_entry(std::string key, const std::vector<float>& v) {
    Entry e{std::move(key), {}};
    put_u32(e.value, 3);
    put_u32(e.value, static_cast<std::uint32_t>(v.size()));
    for (float f : v) put_f32(e.value, f);
    return e;
}
inline Entry string_array_entry(std::string key, const std::vector<std::string>& v) {
    Entry e{std::move(key), {}};
    put_u32(e.value, 4);
    put_u32(e.value, static_cast<std::uint32_t>(v.size()));
    for (const auto& s : v) put_string(e.value, s);
    return e;
}

// FORMAT.md's dtype codes.
constexpr std::uint32_t kF32 = 0, kBF16 = 1, kInt8 = 2;

// f32 → bf16 bits, rounded to nearest, ties to even (finite values).
inline std::uint16_t bf16_bits(float f) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    return static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// FORMAT.md's int8 rule for rows of `columns` values: scale = max|row| / 127,
// q = round half to even (nearbyint) of value / scale, clamped to ±127.
inline void quantize_rows(const std::vector<float>& values, std::size_t columns, std::vector<std::int8_t>& q,
                          std::vector<float>& scales) {
    const std::size_t rows = values.size() / columns;
    q.assign(values.size(), 0);
    scales.assign(rows, 0.f);
    for (std::size_t r = 0; r < rows; ++r) {
        float max_abs = 0.f;
        for (std::size_t c = 0; c < columns; ++c) max_abs = std::max(max_abs, std::fabs(values[r * columns + c]));
        scales[r] = max_abs / 127.f;
        if (scales[r] == 0.f) continue;
        for (std::size_t c = 0; c < columns; ++c)
            q[r * columns + c] = static_cast<std::int8_t>(
                std::clamp(std::nearbyint(values[r * columns + c] / scales[r]), -127.f, 127.f));
    }
}

struct Tensor {
    std::string name;
    std::vector<std::uint64_t> dims;
    std::vector<float> values;  // product(dims) floats, stored as `dtype` says
    // Hostile overrides of what the tensor record says (the data stays where
    // the layout puts it); empty means "the true value".
    std::optional<std::uint64_t> offset{};
    std::optional<std::uint64_t> nbytes{};
    std::uint32_t dtype = kF32;  // an unknown code stores the values as f32
    // int8 only: replaces the scales the rule computes (hostile scales).
    std::optional<std::vector<float>> scales{};

    // The bytes of the tensor's data, as FORMAT.md lays them out for its dtype.
    Bytes stored() const {
        if (dtype == kBF16) {
            std::vector<std::uint16_t> bits(values.size());
            for (std::size_t i = 0; i < values.size(); ++i) bits[i] = bf16_bits(values[i]);
            return little_endian_bytes(bits.data(), bits.size() * 2);
        }
        if (dtype == kInt8 && dims.size() == 2) {
            std::vector<std::int8_t> q;
            std::vector<float> row_scales;
            quantize_rows(values, dims[1], q, row_scales);
            const std::vector<float>& written = scales ? *scales : row_scales;
            const std::size_t padded = (q.size() + 63) / 64 * 64;
            Bytes out(padded + written.size() * 4, 0);
            std::memcpy(out.data(), q.data(), q.size());
            std::memcpy(out.data() + padded, written.data(), written.size() * 4);
            return out;
        }
        return little_endian_bytes(values.data(), values.size() * 4);
    }

private:
    // Every machine this project builds on is little-endian, as the format is.
    static Bytes little_endian_bytes(const void* data, std::size_t size) {
        const auto* begin = static_cast<const std::uint8_t*>(data);
        return Bytes(begin, begin + size);
    }
};

// The architecture of a tiny ViT; the defaults make a 3-channel 4×4 model of
// about 2 KB that the engine loads and runs in milliseconds.
struct Spec {
    int image = 4, channels = 3, patch = 2, dim = 4, depth = 1, heads = 2, head_dim = 2, mlp = 8;
    int classes = 3, prefix = 1;
    bool qkv_bias = true, attn_proj = true, final_norm = true, head_norm = false;
    bool distilled = false, mean_pool = false, labels = true, tanh_gelu = false;
    bool token_and_mean = false;  // arch.pool token_and_mean_patches: a 2·dim pooled vector
    int mlp_head = 0;             // > 0: arch.head = mlp with this hidden width
    bool patch_norm = false;      // writes arch.patch_norm = 1 and its tensors
    // timm zoo features: no class token (prefix = registers only), norm_pre, attention
    // pooling, QuickGELU; classes 0 makes a model without a head.
    bool class_token = true, norm_pre = false, map_pool = false, quick_gelu = false;
    int pool_proj = 0;  // > 0: a pool_proj layer of this width (tanh if pool_proj_tanh)
    bool pool_proj_tanh = false;
    std::string resize = "shorter_then_crop", interpolation = "bicubic";
    int resize_size = 5;
};

// A whole file: metadata entries and tensors in order, laid out as the
// converter lays them out (64-aligned, increasing, no gaps beyond alignment).
struct ModelBytes {
    std::vector<Entry> entries;
    std::vector<Tensor> tensors;
    std::optional<std::uint32_t> entry_count;  // what the counts say, if not the truth
    std::optional<std::uint32_t> tensor_count;
    std::uint32_t version = 1;  // 2: arch.features lists the 2025-26 layers (modern_model)

    Bytes header() const {
        Bytes h;
        put_u32(h, entry_count.value_or(static_cast<std::uint32_t>(entries.size())));
        for (const Entry& e : entries) {
            put_string(h, e.key);
            h.insert(h.end(), e.value.begin(), e.value.end());
        }
        put_u32(h, tensor_count.value_or(static_cast<std::uint32_t>(tensors.size())));
        std::uint64_t offset = 0;
        for (const Tensor& t : tensors) {
            put_string(h, t.name);
            put_u32(h, t.dtype);
            put_u32(h, static_cast<std::uint32_t>(t.dims.size()));
            for (auto d : t.dims) put_u64(h, d);
            const std::uint64_t size = t.stored().size();
            put_u64(h, t.offset.value_or(offset));
            put_u64(h, t.nbytes.value_or(size));
            offset = (offset + size + 63) / 64 * 64;
        }
        return h;
    }

    Bytes bytes() const {
        const Bytes h = header();
        const std::uint64_t data_offset = (kFixedHeader + h.size() + 63) / 64 * 64;
        Bytes b = {'O', 'N', 'E', 'V', 'I', 'T', 0, 1};
        put_u32(b, version);
        put_u32(b, 0);  // header_crc, below
        put_u64(b, data_offset);
        put_u32(b, 0);  // data_crc, below
        put_u32(b, 0);  // reserved
        b.insert(b.end(), h.begin(), h.end());
        b.resize(data_offset, 0);
        for (std::size_t i = 0; i < tensors.size(); ++i) {
            const Bytes data = tensors[i].stored();
            b.insert(b.end(), data.begin(), data.end());
            if (i + 1 < tensors.size()) b.resize((b.size() - data_offset + 63) / 64 * 64 + data_offset, 0);
        }
        reseal(b);
        return b;
    }

    Tensor* tensor(const std::string& name) {
        for (Tensor& t : tensors)
            if (t.name == name) return &t;
        return nullptr;
    }
    // Stores every linear weight (a 2-D *.weight tensor) as `dtype`.
    void store_linear_weights(std::uint32_t dtype) {
        for (Tensor& t : tensors)
            if (t.dims.size() == 2 && t.name.size() > 7 && t.name.compare(t.name.size() - 7, 7, ".weight") == 0)
                t.dtype = dtype;
    }
    Entry* entry(const std::string& key) {
        for (Entry& e : entries)
            if (e.key == key) return &e;
        return nullptr;
    }
};

// Deterministic small weights in [-0.5, 0.5).
inline std::vector<float> pseudo_random(std::size_t n, std::uint32_t seed) {
    std::vector<float> v(n);
    std::uint32_t x = seed * 2654435761u + 12345u;
    for (auto& f : v) {
        x = x * 1664525u + 1013904223u;
        f = static_cast<float>(x >> 8) / static_cast<float>(1 << 24) - 0.5f;
    }
    return v;
}

// Every timm zoo feature at once: two register tokens and no class token, norm_pre,
// attention pooling, QuickGELU, no head.
inline Spec zoo_spec() {
    Spec s;
    s.class_token = false;
    s.prefix = 2;
    s.norm_pre = s.map_pool = s.quick_gelu = true;
    s.classes = 0;
    return s;
}

inline ModelBytes tiny_model(const Spec& s = {}, std::uint32_t seed = 1) {
    ModelBytes m;
    auto& e = m.entries;
    e.push_back(string_entry("arch.family", "synthetic"));
    e.push_back(u32_entry("arch.image_height", s.image));
    e.push_back(u32_entry("arch.image_width", s.image));
    e.push_back(u32_entry("arch.channels", s.channels));
    e.push_back(u32_entry("arch.patch_size", s.patch));
    e.push_back(u32_entry("arch.dim", s.dim));
    e.push_back(u32_entry("arch.depth", s.depth));
    e.push_back(u32_entry("arch.heads", s.heads));
    e.push_back(u32_entry("arch.head_dim", s.head_dim));
    e.push_back(u32_entry("arch.mlp_dim", s.mlp));
    e.push_back(u32_entry("arch.num_classes", s.classes));
    e.push_back(u32_entry("arch.prefix_tokens", s.distilled ? 2 : s.prefix));
    e.push_back(f32_entry("arch.norm_eps", 1e-6f));
    e.push_back(string_entry("arch.gelu", s.quick_gelu ? "quick" : s.tanh_gelu ? "tanh" : "erf"));
    e.push_back(f32_entry("arch.attn_scale", 0.7071f));
    e.push_back(u32_entry("arch.qkv_bias", s.qkv_bias));
    e.push_back(u32_entry("arch.attn_proj", s.attn_proj));
    e.push_back(u32_entry("arch.final_norm", s.final_norm));
    e.push_back(string_entry("arch.pool", s.map_pool         ? "map"
                                          : s.mean_pool      ? "mean"
                                          : s.token_and_mean ? "token_and_mean_patches"
                                                             : "token"));
    e.push_back(u32_entry("arch.head_norm", s.head_norm));
    e.push_back(string_entry("arch.head", s.classes == 0   ? "none"
                                          : s.distilled    ? "distilled"
                                          : s.mlp_head > 0 ? "mlp"
                                                           : "linear"));
    if (s.mlp_head > 0) e.push_back(u32_entry("arch.head_hidden", s.mlp_head));
    if (s.patch_norm) e.push_back(u32_entry("arch.patch_norm", 1));
    if (!s.class_token) e.push_back(u32_entry("arch.class_token", 0));
    if (s.norm_pre) e.push_back(u32_entry("arch.norm_pre", 1));
    if (s.pool_proj > 0) {
        e.push_back(u32_entry("arch.pool_proj", s.pool_proj));
        e.push_back(string_entry("arch.pool_proj_act", s.pool_proj_tanh ? "tanh" : "none"));
    }
    e.push_back(string_entry("preprocess.resize", s.resize));
    e.push_back(u32_entry("preprocess.resize_size", s.resize_size));
    e.push_back(string_entry("preprocess.interpolation", s.interpolation));
    e.push_back(f32_array_entry("preprocess.mean", std::vector<float>(s.channels, 0.5f)));
    e.push_back(f32_array_entry("preprocess.std", std::vector<float>(s.channels, 0.25f)));
    if (s.labels) {
        std::vector<std::string> names;
        for (int k = 0; k < s.classes; ++k) names.push_back("class " + std::to_string(k));
        e.push_back(string_array_entry("labels", names));
    }

    const std::uint64_t D = s.dim, I = std::uint64_t(s.heads) * s.head_dim, M = s.mlp, K = s.classes;
    const std::uint64_t T = s.distilled ? 2 : s.prefix;
    const std::uint64_t G = std::uint64_t(s.image / s.patch) * (s.image / s.patch);
    std::uint32_t n = seed * 1000;
    auto add = [&](const std::string& name, std::vector<std::uint64_t> dims) {
        std::uint64_t count = 1;
        for (auto d : dims) count *= d;
        m.tensors.push_back({name, std::move(dims), pseudo_random(count, ++n)});
    };
    add("patch_embed.weight", {D, std::uint64_t(s.channels), std::uint64_t(s.patch), std::uint64_t(s.patch)});
    add("patch_embed.bias", {D});
    if (s.patch_norm) {
        const std::uint64_t P = std::uint64_t(s.channels) * s.patch * s.patch;
        add("patch_embed.norm_in.weight", {P});
        add("patch_embed.norm_in.bias", {P});
        add("patch_embed.norm_out.weight", {D});
        add("patch_embed.norm_out.bias", {D});
    }
    if (T > 0) add("prefix_tokens", {T, D});
    add("pos_embed", {T + G, D});
    if (s.norm_pre) {
        add("norm_pre.weight", {D});
        add("norm_pre.bias", {D});
    }
    for (int i = 0; i < s.depth; ++i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        add(b + "norm1.weight", {D});
        add(b + "norm1.bias", {D});
        add(b + "attn.qkv.weight", {3 * I, D});
        if (s.qkv_bias) add(b + "attn.qkv.bias", {3 * I});
        if (s.attn_proj) {
            add(b + "attn.proj.weight", {D, I});
            add(b + "attn.proj.bias", {D});
        }
        add(b + "norm2.weight", {D});
        add(b + "norm2.bias", {D});
        add(b + "mlp.fc1.weight", {M, D});
        add(b + "mlp.fc1.bias", {M});
        add(b + "mlp.fc2.weight", {D, M});
        add(b + "mlp.fc2.bias", {D});
    }
    if (s.final_norm) {
        add("norm.weight", {D});
        add("norm.bias", {D});
    }
    if (s.map_pool) {
        add("attn_pool.query", {D});
        add("attn_pool.kv.weight", {2 * D, D});
        add("attn_pool.kv.bias", {2 * D});
        add("attn_pool.proj.weight", {D, D});
        add("attn_pool.proj.bias", {D});
        add("attn_pool.norm.weight", {D});
        add("attn_pool.norm.bias", {D});
        add("attn_pool.fc1.weight", {M, D});
        add("attn_pool.fc1.bias", {M});
        add("attn_pool.fc2.weight", {D, M});
        add("attn_pool.fc2.bias", {D});
    }
    if (s.head_norm) {
        add("head_norm.weight", {D});
        add("head_norm.bias", {D});
    }
    const std::uint64_t W = s.token_and_mean ? 2 * D : D;                      // the pooled vector's width
    const std::uint64_t E = s.pool_proj > 0 ? std::uint64_t(s.pool_proj) : W;  // the embedding's
    if (s.pool_proj > 0) {
        add("pool_proj.weight", {E, W});
        add("pool_proj.bias", {E});
    }
    if (s.mlp_head > 0) {
        add("head_hidden.weight", {std::uint64_t(s.mlp_head), E});
        add("head_hidden.bias", {std::uint64_t(s.mlp_head)});
    }
    if (K > 0) {
        add("head.weight", {K, s.mlp_head > 0 ? std::uint64_t(s.mlp_head) : E});
        add("head.bias", {K});
    }
    if (s.distilled) {
        add("head_dist.weight", {K, D});
        add("head_dist.bias", {K});
    }
    return m;
}

// A version 2 file (weights/FORMAT.md, "Features (version 2)"): tiny_model(s)
// with `features`, the metadata each reads (RoPE interleaved, one table; attention
// pooling of 1 head, 6 wide; s.map_pool for attn_pool_shape) and the tensors the
// engine's description (engine/model/graph.cpp) expects of them.
inline ModelBytes modern_model(const std::vector<std::string>& features, const Spec& s = {}, std::uint32_t seed = 1) {
    ModelBytes m = tiny_model(s, seed);
    m.version = 2;
    const auto has = [&](const char* f) { return std::find(features.begin(), features.end(), f) != features.end(); };
    m.entries.push_back(string_array_entry("arch.features", features));
    if (has("rope")) {
        m.entries.push_back(string_entry("arch.rope_layout", "interleaved"));
        m.entries.push_back(u32_entry("arch.rope_per_block", 0));
    }
    if (has("attn_pool_shape")) {
        m.entries.push_back(u32_entry("arch.pool_heads", 1));
        m.entries.push_back(u32_entry("arch.pool_mlp_dim", 6));
        m.entries.push_back(u32_entry("arch.pool_prefix", 0));
    }
    const std::uint64_t D = s.dim, I = std::uint64_t(s.heads) * s.head_dim, M = s.mlp, H = s.heads;
    const std::uint64_t T = (s.distilled ? 2 : s.prefix) + std::uint64_t(s.image / s.patch) * (s.image / s.patch);
    std::uint32_t n = seed * 2000;
    std::vector<Tensor>& t = m.tensors;
    const auto at = [&](const std::string& name) {
        return std::find_if(t.begin(), t.end(), [&](const Tensor& x) { return x.name == name; });
    };
    const auto tensor = [&](const std::string& name, std::vector<std::uint64_t> dims) {
        std::uint64_t count = 1;
        for (auto d : dims) count *= d;
        return Tensor{name, std::move(dims), pseudo_random(count, ++n)};
    };
    const auto insert_before = [&](const std::string& next, const std::string& name, std::vector<std::uint64_t> dims) {
        t.insert(at(next), tensor(name, std::move(dims)));
    };
    const auto norm_before = [&](const std::string& next, const std::string& name, std::uint64_t dim) {
        insert_before(next, name + ".weight", {dim});
        insert_before(next, name + ".bias", {dim});  // dropped below under rms_norm
    };
    const std::string first_block = s.depth > 0 ? "blocks.0.norm1.weight" : "";
    if (has("embed_norm")) norm_before(t[2].name, "embed_norm", D);
    if (has("no_pos_embed")) t.erase(at("pos_embed"));
    if (has("rope")) {
        insert_before(first_block, "rope.cos", {T, std::uint64_t(s.head_dim)});
        insert_before(first_block, "rope.sin", {T, std::uint64_t(s.head_dim)});
    }
    for (int i = 0; i < s.depth; ++i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        const std::string after_qkv = s.attn_proj ? b + "attn.proj.weight" : b + "norm2.weight";
        if (has("qk_norm")) {
            norm_before(after_qkv, b + "attn.q_norm", std::uint64_t(s.head_dim));
            norm_before(after_qkv, b + "attn.k_norm", std::uint64_t(s.head_dim));
        }
        if (has("rel_pos_bias")) insert_before(after_qkv, b + "attn.rel_pos_bias", {H, T, T});
        if (has("attn_norm")) norm_before(after_qkv, b + "attn.norm", I);
        if (has("swiglu")) {
            *at(b + "mlp.fc1.weight") = tensor(b + "mlp.fc1.weight", {2 * M, D});
            *at(b + "mlp.fc1.bias") = tensor(b + "mlp.fc1.bias", {2 * M});
        }
        if (has("mlp_norm")) norm_before(b + "mlp.fc2.weight", b + "mlp.norm", M);
        if (has("parallel")) {
            t.erase(at(b + "norm2.weight"));
            t.erase(at(b + "norm2.bias"));
        }
    }
    if (has("attn_pool_shape")) {
        *at("attn_pool.fc1.weight") = tensor("attn_pool.fc1.weight", {6, D});
        *at("attn_pool.fc1.bias") = tensor("attn_pool.fc1.bias", {6});
        *at("attn_pool.fc2.weight") = tensor("attn_pool.fc2.weight", {D, 6});
    }
    if (has("rms_norm"))  // RMSNorm has no shift: a norm is a 1-D weight with a bias beside it
        for (auto it = t.begin(); it != t.end();) {
            const std::string& name = it->name;
            const bool norm_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0 &&
                                   at(name.substr(0, name.size() - 5) + ".weight") != t.end() &&
                                   at(name.substr(0, name.size() - 5) + ".weight")->dims.size() == 1;
            it = norm_bias ? t.erase(it) : it + 1;
        }
    return m;
}

// The byte offset of `needle` in `haystack` (its first occurrence), or npos.
inline std::size_t find(const Bytes& haystack, const std::string& needle, std::size_t from = 0) {
    if (needle.empty() || haystack.size() < needle.size()) return std::string::npos;
    for (std::size_t i = from; i + needle.size() <= haystack.size(); ++i)
        if (std::memcmp(haystack.data() + i, needle.data(), needle.size()) == 0) return i;
    return std::string::npos;
}

}  // namespace onevit::synthetic
