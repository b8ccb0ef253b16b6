#include "format/model_file.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "format/byte_reader.hpp"
#include "format/dequantize.hpp"
#include "onevit/error.hpp"

namespace onevit {

namespace {

constexpr std::uint8_t kMagic[8] = {'O', 'N', 'E', 'V', 'I', 'T', 0, 1};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kFixedHeaderBytes = 32;
constexpr std::uint64_t kMaxFileBytes = 1ull << 50;  // sums of larger offsets could wrap
constexpr std::uint64_t kAlignment = 64;

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

struct Value {
    std::uint32_t type = kU32;
    std::uint32_t u32 = 0;
    float f32 = 0.f;
    std::string string;
    std::vector<float> f32_array;
    std::vector<std::string> string_array;
};

bool valid_key(const std::string& key) {
    if (key.empty()) return false;
    for (char c : key)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return false;
    return true;
}

Value read_value(ByteReader& in, const std::string& key) {
    Value v;
    v.type = in.u32("metadata type");
    const char* field = key.c_str();
    switch (v.type) {
        case kU32: v.u32 = in.u32(field); break;
        case kF32: v.f32 = in.f32(field); break;
        case kString: v.string = in.string(field, kMaxStringLength); break;
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
            for (std::uint32_t i = 0; i < n; ++i)
                v.string_array.push_back(in.string(field, kMaxStringLength));
            break;
        }
        default: in.fail(key + ": unknown metadata type " + std::to_string(v.type));
    }
    return v;
}

// Typed, range-checked access to the metadata entries.
class Metadata {
public:
    Metadata(std::map<std::string, Value> entries, std::string context)
        : entries_(std::move(entries)), context_(std::move(context)) {}

    int u32(const std::string& key, std::uint32_t min, std::uint32_t max) const {
        const std::uint32_t v = get(key, kU32).u32;
        if (v < min || v > max)
            fail(key + " = " + std::to_string(v) + " is outside [" + std::to_string(min) + ", " +
                 std::to_string(max) + "]");
        return static_cast<int>(v);
    }
    bool flag(const std::string& key) const { return u32(key, 0, 1) == 1; }
    bool has(const std::string& key) const { return entries_.count(key) != 0; }
    // A key added after version 1's first files: absent means `absent`.
    int optional_u32(const std::string& key, std::uint32_t min, std::uint32_t max, int absent) const {
        return entries_.count(key) ? u32(key, min, max) : absent;
    }
    float positive_f32(const std::string& key) const {
        const float v = get(key, kF32).f32;
        if (!std::isfinite(v) || v <= 0.f) fail(key + " = " + std::to_string(v) + " is not a positive number");
        return v;
    }
    const std::string& string(const std::string& key) const { return get(key, kString).string; }
    const std::vector<float>& f32_array(const std::string& key) const { return get(key, kF32Array).f32_array; }
    const std::vector<std::string>* optional_string_array(const std::string& key) const {
        auto it = entries_.find(key);
        if (it == entries_.end()) return nullptr;
        return &get(key, kStringArray).string_array;
    }
    template <class Enum>
    Enum choice(const std::string& key, std::initializer_list<std::pair<const char*, Enum>> options) const {
        const std::string& s = string(key);
        std::string allowed;
        for (const auto& [name, value] : options) {
            if (s == name) return value;
            allowed += allowed.empty() ? name : std::string(", ") + name;
        }
        fail(key + " = \"" + s + "\" is not one of: " + allowed);
    }
    [[noreturn]] void fail(const std::string& message) const { throw Error(context_ + ": " + message); }

private:
    const Value& get(const std::string& key, std::uint32_t type) const {
        auto it = entries_.find(key);
        if (it == entries_.end()) fail("missing metadata key " + key);
        if (it->second.type != type) fail("metadata key " + key + " has the wrong type");
        return it->second;
    }
    std::map<std::string, Value> entries_;
    std::string context_;
};

Architecture read_architecture(const Metadata& m) {
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
    a.gelu = m.choice<Gelu>("arch.gelu", {{"erf", Gelu::erf}, {"tanh", Gelu::tanh}, {"quick", Gelu::quick}});
    a.attn_scale = m.positive_f32("arch.attn_scale");
    a.qkv_bias = m.flag("arch.qkv_bias");
    a.attn_proj = m.flag("arch.attn_proj");
    a.final_norm = m.flag("arch.final_norm");
    a.pool = m.choice<Pool>("arch.pool", {{"token", Pool::token},
                                          {"mean", Pool::mean},
                                          {"mean_patches", Pool::mean_patches},
                                          {"map", Pool::map},
                                          {"token_and_mean_patches", Pool::token_and_mean_patches}});
    a.head_norm = m.flag("arch.head_norm");
    a.head = m.choice<Head>("arch.head", {{"linear", Head::linear},
                                          {"distilled", Head::distilled},
                                          {"mlp", Head::mlp},
                                          {"none", Head::none}});
    a.head_hidden = a.head == Head::mlp ? m.u32("arch.head_hidden", 1, 4 * kMaxWidth) : 0;
    a.patch_norm = m.optional_u32("arch.patch_norm", 0, 1, 0) == 1;
    a.class_token = m.optional_u32("arch.class_token", 0, 1, 1) == 1;
    a.norm_pre = m.optional_u32("arch.norm_pre", 0, 1, 0) == 1;
    a.pool_proj = m.optional_u32("arch.pool_proj", 0, 4 * kMaxWidth, 0);
    if (m.has("arch.pool_proj_act")) {
        if (a.pool_proj == 0) m.fail("arch.pool_proj_act needs arch.pool_proj");
        a.pool_proj_act = m.choice<PoolProjAct>("arch.pool_proj_act",
                                                {{"none", PoolProjAct::none}, {"tanh", PoolProjAct::tanh}});
    }

    if (a.image_height % a.patch_size || a.image_width % a.patch_size)
        m.fail("image " + std::to_string(a.image_height) + "x" + std::to_string(a.image_width) +
               " is not a multiple of patch_size " + std::to_string(a.patch_size));
    if (static_cast<std::uint64_t>(a.tokens()) > kMaxTokens) m.fail("too many tokens");
    if (static_cast<std::uint64_t>(a.heads) * a.head_dim > kMaxWidth) m.fail("heads x head_dim too large");
    if (!a.attn_proj && a.inner_dim() != a.dim)
        m.fail("arch.attn_proj = 0 needs heads x head_dim == dim");
    if (a.head == Head::distilled && (a.prefix_tokens != 2 || !a.class_token))
        m.fail("a distilled head needs 2 prefix tokens, the first a class token");
    if ((a.head == Head::none) != (a.num_classes == 0))
        m.fail("arch.head = \"none\" goes with arch.num_classes = 0, and only with it");
    if (a.class_token && a.prefix_tokens < 1) m.fail("arch.class_token = 1 needs arch.prefix_tokens >= 1");
    if ((a.pool == Pool::token || a.pool == Pool::token_and_mean_patches) && !a.class_token)
        m.fail(std::string("arch.pool = \"") + to_string(a.pool) + "\" needs a class token");
    if (a.pool == Pool::token_and_mean_patches && (a.head_norm || a.head == Head::distilled))
        m.fail("arch.pool = \"token_and_mean_patches\" goes with neither a head norm nor a distilled head");
    if (a.pool == Pool::map && a.inner_dim() != a.dim) m.fail("arch.pool = \"map\" needs heads x head_dim == dim");
    if (a.pool_proj > 0 && a.head == Head::distilled) m.fail("arch.pool_proj does not go with a distilled head");
    return a;
}

Preprocessing read_preprocessing(const Metadata& m, int channels) {
    Preprocessing p;
    p.resize = m.choice<Resize>("preprocess.resize", {{"shorter_then_crop", Resize::shorter_then_crop},
                                                      {"direct", Resize::direct},
                                                      {"squash_then_crop", Resize::squash_then_crop}});
    p.resize_size = m.u32("preprocess.resize_size", 0, kMaxImageSide);
    if (p.resize != Resize::direct && p.resize_size == 0) m.fail("preprocess.resize_size is 0");
    p.interpolation = m.choice<Interpolation>("preprocess.interpolation",
                                              {{"nearest", Interpolation::nearest},
                                               {"bilinear", Interpolation::bilinear},
                                               {"bicubic", Interpolation::bicubic}});
    p.mean = m.f32_array("preprocess.mean");
    p.std = m.f32_array("preprocess.std");
    if (p.mean.size() != static_cast<std::size_t>(channels) || p.std.size() != p.mean.size())
        m.fail("preprocess.mean/std need one value per channel (" + std::to_string(channels) + ")");
    for (std::size_t c = 0; c < p.mean.size(); ++c)
        if (!std::isfinite(p.mean[c]) || !std::isfinite(p.std[c]) || p.std[c] <= 0.f)
            m.fail("preprocess.mean/std has a non-finite value or a std <= 0");
    return p;
}

// The canonical tensor set of weights/FORMAT.md, with the shapes the architecture implies.
std::map<std::string, std::vector<std::int64_t>> expected_tensors(const Architecture& a) {
    const std::int64_t D = a.dim, I = a.inner_dim(), M = a.mlp_dim, K = a.num_classes;
    std::map<std::string, std::vector<std::int64_t>> t;
    t["patch_embed.weight"] = {D, a.channels, a.patch_size, a.patch_size};
    t["patch_embed.bias"] = {D};
    if (a.patch_norm) {
        t["patch_embed.norm_in.weight"] = t["patch_embed.norm_in.bias"] = {a.patch_dim()};
        t["patch_embed.norm_out.weight"] = t["patch_embed.norm_out.bias"] = {D};
    }
    if (a.prefix_tokens > 0) t["prefix_tokens"] = {a.prefix_tokens, D};
    t["pos_embed"] = {a.tokens(), D};
    if (a.norm_pre) t["norm_pre.weight"] = t["norm_pre.bias"] = {D};
    for (int i = 0; i < a.depth; ++i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        t[b + "norm1.weight"] = t[b + "norm1.bias"] = {D};
        t[b + "attn.qkv.weight"] = {3 * I, D};
        if (a.qkv_bias) t[b + "attn.qkv.bias"] = {3 * I};
        if (a.attn_proj) {
            t[b + "attn.proj.weight"] = {D, I};
            t[b + "attn.proj.bias"] = {D};
        }
        t[b + "norm2.weight"] = t[b + "norm2.bias"] = {D};
        t[b + "mlp.fc1.weight"] = {M, D};
        t[b + "mlp.fc1.bias"] = {M};
        t[b + "mlp.fc2.weight"] = {D, M};
        t[b + "mlp.fc2.bias"] = {D};
    }
    if (a.final_norm) t["norm.weight"] = t["norm.bias"] = {D};
    if (a.pool == Pool::map) {
        t["attn_pool.query"] = {D};
        t["attn_pool.kv.weight"] = {2 * D, D};
        t["attn_pool.kv.bias"] = {2 * D};
        t["attn_pool.proj.weight"] = {D, D};
        t["attn_pool.proj.bias"] = t["attn_pool.norm.weight"] = t["attn_pool.norm.bias"] = {D};
        t["attn_pool.fc1.weight"] = {M, D};
        t["attn_pool.fc1.bias"] = {M};
        t["attn_pool.fc2.weight"] = {D, M};
        t["attn_pool.fc2.bias"] = {D};
    }
    if (a.head_norm) t["head_norm.weight"] = t["head_norm.bias"] = {D};
    if (a.pool_proj > 0) {
        t["pool_proj.weight"] = {a.pool_proj, a.pooled_dim()};
        t["pool_proj.bias"] = {a.pool_proj};
    }
    if (a.head == Head::mlp) {
        t["head_hidden.weight"] = {a.head_hidden, a.embed_dim()};
        t["head_hidden.bias"] = {a.head_hidden};
    }
    if (a.head != Head::none) {
        t["head.weight"] = {K, a.head == Head::mlp ? a.head_hidden : a.embed_dim()};
        t["head.bias"] = {K};
    }
    if (a.head == Head::distilled) {
        t["head_dist.weight"] = {K, D};
        t["head_dist.bias"] = {K};
    }
    return t;
}

// bf16 and int8 are for the linear weights only (weights/FORMAT.md): the
// 2-D `*.weight` tensors of the canonical table.
bool is_linear_weight(const std::string& name, const std::vector<std::int64_t>& dims) {
    const std::string suffix = ".weight";
    return dims.size() == 2 && name.size() > suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::uint64_t aligned(std::uint64_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

// The record's nbytes for `elements` values of `dtype` in `rows` rows.
std::uint64_t stored_bytes(TensorDType dtype, std::uint64_t elements, std::uint64_t rows) {
    switch (dtype) {
        case TensorDType::f32: return elements * 4;
        case TensorDType::bf16: return elements * 2;
        case TensorDType::int8: return aligned(elements) + rows * 4;  // s8 values, padding, f32 scales
    }
    return 0;
}

std::string shape_string(const std::vector<std::int64_t>& dims) {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

std::uint32_t crc32_of(const std::uint8_t* data, std::uint64_t size) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (size > 0) {  // zlib takes 32-bit lengths
        const uInt chunk = static_cast<uInt>(std::min<std::uint64_t>(size, 1u << 30));
        crc = crc32(crc, data, chunk);
        data += chunk;
        size -= chunk;
    }
    return static_cast<std::uint32_t>(crc);
}

// The precision a weight stored as dtype was written for; Precision's order is f32, bf16, int8.
Precision precision_of(TensorDType dtype) {
    switch (dtype) {
        case TensorDType::f32: return Precision::f32;
        case TensorDType::bf16: return Precision::bf16;
        case TensorDType::int8: return Precision::int8;
    }
    return Precision::f32;
}

}  // namespace

std::int64_t element_count(const std::vector<std::int64_t>& dims) {
    std::int64_t n = 1;
    for (auto d : dims) n *= d;
    return n;
}

const char* to_string(TensorDType dtype) {
    switch (dtype) {
        case TensorDType::f32: return "f32";
        case TensorDType::bf16: return "bf16";
        case TensorDType::int8: return "int8";
    }
    return "?";
}

ModelFile::ModelFile(std::string path, MappedFile file) : path_(std::move(path)), file_(std::move(file)) {}

ModelFile ModelFile::open(const std::string& path) {
    ModelFile mf(path, MappedFile(path));
    const std::uint8_t* base = mf.file_.data();
    const std::uint64_t file_size = mf.file_.size();

    ByteReader fixed(base, file_size, path);
    const auto truncated = [&](const std::string& needs) {
        return Error(path + ": truncated (" + std::to_string(file_size) + " bytes, " + needs + ")");
    };
    if (std::memcmp(base, kMagic, file_size < sizeof kMagic ? file_size : sizeof kMagic) != 0)
        throw Error(path + ": not an onevit model file (bad magic)");
    if (file_size < kFixedHeaderBytes) throw truncated("the header needs at least " + std::to_string(kFixedHeaderBytes));
    fixed.u64("magic");
    const std::uint32_t version = fixed.u32("version");
    if (version != kVersion)
        throw Error(path + ": unsupported model file version " + std::to_string(version) + " (expected " +
                    std::to_string(kVersion) + ")");
    const std::uint32_t header_crc = fixed.u32("header_crc");
    mf.data_offset_ = fixed.u64("data_offset");
    mf.data_crc_ = fixed.u32("data_crc");
    if (fixed.u32("reserved") != 0) fixed.fail("reserved field is not 0");
    if (mf.data_offset_ < kFixedHeaderBytes || mf.data_offset_ % kAlignment || mf.data_offset_ > kMaxFileBytes)
        throw Error(path + ": data_offset " + std::to_string(mf.data_offset_) +
                    " is not a 64-byte aligned offset between the fixed header and 2^50");
    if (mf.data_offset_ > file_size) throw truncated("the header needs " + std::to_string(mf.data_offset_));
    constexpr std::size_t kChecksummedFrom = 16;  // everything after header_crc itself
    const std::uint32_t actual_crc = crc32_of(base + kChecksummedFrom, mf.data_offset_ - kChecksummedFrom);
    if (actual_crc != header_crc) throw Error(path + ": header checksum mismatch (file corrupted or truncated)");

    ByteReader in(base + kFixedHeaderBytes, mf.data_offset_ - kFixedHeaderBytes, path + ": header");
    std::map<std::string, Value> entries;
    const std::uint32_t entry_count = in.u32("metadata count");
    if (entry_count > kMaxEntries) in.fail("metadata count " + std::to_string(entry_count) + " is too large");
    for (std::uint32_t i = 0; i < entry_count; ++i) {
        std::string key = in.string("metadata key", kMaxKeyLength);
        if (!valid_key(key)) in.fail("invalid metadata key \"" + key + "\"");
        if (entries.count(key)) in.fail("duplicate metadata key " + key);
        Value v = read_value(in, key);
        entries.emplace(std::move(key), std::move(v));
    }
    Metadata meta(std::move(entries), path);
    ModelInfo& info = mf.info_;
    info.arch = read_architecture(meta);
    info.preprocess = read_preprocessing(meta, info.arch.channels);
    // Labels and the embedding's description are printed as they are: a newline or an
    // escape sequence in one could forge lines of output or drive the terminal.
    const auto printable = [&](const std::string& text, const std::string& what) {
        for (const unsigned char c : text)
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                meta.fail(what + " contains a control character (byte " + std::to_string(c) + ")");
    };
    if (const auto* labels = meta.optional_string_array("labels")) {
        if (labels->size() != static_cast<std::size_t>(info.arch.num_classes))
            meta.fail("labels has " + std::to_string(labels->size()) + " names for " +
                      std::to_string(info.arch.num_classes) + " classes");
        for (std::size_t k = 0; k < labels->size(); ++k) printable((*labels)[k], "labels[" + std::to_string(k) + "]");
        info.labels = *labels;
    }
    if (meta.has("embedding")) {
        info.embedding = meta.string("embedding");
        printable(info.embedding, "embedding");
    }

    const std::uint64_t data_bytes = file_size - mf.data_offset_;
    const std::uint32_t tensor_count = in.u32("tensor count");
    if (tensor_count > kMaxEntries) in.fail("tensor count " + std::to_string(tensor_count) + " is too large");
    std::uint64_t next_free = 0;  // tensors are ordered and disjoint
    for (std::uint32_t i = 0; i < tensor_count; ++i) {
        std::string name = in.string("tensor name", kMaxKeyLength);
        if (name.empty()) in.fail("empty tensor name");
        if (mf.tensors_.count(name)) in.fail("duplicate tensor " + name);
        const std::uint32_t dtype_code = in.u32("tensor dtype");
        if (dtype_code > static_cast<std::uint32_t>(TensorDType::int8))
            in.fail(name + ": unsupported dtype " + std::to_string(dtype_code));
        Entry entry;
        StoredTensor& stored = entry.stored;
        stored.dtype = static_cast<TensorDType>(dtype_code);
        const std::uint32_t ndim = in.u32("tensor ndim");
        if (ndim < 1 || ndim > 4) in.fail(name + ": ndim " + std::to_string(ndim) + " is not in 1..4");
        if (stored.dtype == TensorDType::int8 && ndim != 2)
            in.fail(name + ": an int8 tensor needs 2 dimensions (rows of per-row scales), not " +
                    std::to_string(ndim));
        std::vector<std::int64_t>& dims = stored.dims;
        std::uint64_t elements = 1;
        for (std::uint32_t d = 0; d < ndim; ++d) {
            const std::uint64_t dim = in.u64("tensor dim");
            if (dim < 1 || dim > (1ull << 32)) in.fail(name + ": dimension " + std::to_string(dim) + " out of range");
            if (elements > std::numeric_limits<std::uint64_t>::max() / dim / 4) in.fail(name + ": size overflows");
            elements *= dim;
            dims.push_back(static_cast<std::int64_t>(dim));
        }
        const std::uint64_t offset = in.u64("tensor offset");
        const std::uint64_t nbytes = in.u64("tensor nbytes");
        const std::uint64_t expected_bytes = stored_bytes(stored.dtype, elements, std::uint64_t(dims[0]));
        if (nbytes != expected_bytes)
            in.fail(name + ": nbytes " + std::to_string(nbytes) + " does not match its shape and dtype " +
                    to_string(stored.dtype) + " (" + std::to_string(expected_bytes) + ")");
        if (offset % kAlignment) in.fail(name + ": offset " + std::to_string(offset) + " is not 64-byte aligned");
        if (offset < next_free) in.fail(name + ": overlaps the previous tensor or is out of order");
        // The header is checksummed: a tensor past the end is a file cut short (or one
        // whose writer lied, which the same words cover).
        if (offset > data_bytes || nbytes > data_bytes - offset)
            throw truncated("tensor " + name + " needs " +
                            (offset > kMaxFileBytes || nbytes > kMaxFileBytes
                                 ? std::string("data beyond any file")
                                 : std::to_string(mf.data_offset_ + offset + nbytes)));
        next_free = offset + nbytes;
        const std::uint8_t* data = base + mf.data_offset_ + offset;
        stored.data = data;
        stored.nbytes = nbytes;
        if (stored.dtype == TensorDType::int8)
            stored.scales = reinterpret_cast<const float*>(data + aligned(elements));
        if (stored.dtype == TensorDType::f32)
            entry.view = {dims, reinterpret_cast<const float*>(data)};
        else
            entry.widened = std::make_unique<Widened>();
        mf.tensors_.emplace(std::move(name), std::move(entry));
    }

    const auto expected = expected_tensors(info.arch);
    std::string missing, unexpected;
    for (const auto& [name, dims] : expected) {
        auto it = mf.tensors_.find(name);
        if (it == mf.tensors_.end()) {
            missing += (missing.empty() ? "" : ", ") + name;
        } else if (it->second.stored.dims != dims) {
            throw Error(path + ": tensor " + name + " has shape " + shape_string(it->second.stored.dims) +
                        ", the architecture needs " + shape_string(dims));
        }
    }
    for (const auto& entry : mf.tensors_)
        if (!expected.count(entry.first)) unexpected += (unexpected.empty() ? "" : ", ") + entry.first;
    if (!missing.empty()) throw Error(path + ": missing tensors: " + missing);
    if (!unexpected.empty()) throw Error(path + ": unexpected tensors: " + unexpected);

    for (const auto& [name, entry] : mf.tensors_) {
        const StoredTensor& t = entry.stored;
        if (t.dtype != TensorDType::f32 && !is_linear_weight(name, t.dims))
            throw Error(path + ": tensor " + name + " has dtype " + std::to_string(static_cast<int>(t.dtype)) +
                        " (" + to_string(t.dtype) + "), which only linear weights (2-D .weight tensors) may have");
        // Scales are few (one per row) and every int8 path multiplies by them:
        // they are checked here, unlike the weights themselves.
        for (std::int64_t row = 0; t.scales && row < t.dims[0]; ++row)
            if (!std::isfinite(t.scales[row]) || t.scales[row] < 0.f)
                throw Error(path + ": tensor " + name + ": int8 scale of row " + std::to_string(row) + " is " +
                            std::to_string(t.scales[row]) + " (must be finite and >= 0)");
        info.parameter_count += t.elements();
        info.stored_precision = std::max(info.stored_precision, precision_of(t.dtype));  // the most compact
    }
    return mf;
}

const ModelFile::Entry& ModelFile::entry(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw Error(path_ + ": no tensor " + name);
    return it->second;
}

const StoredTensor& ModelFile::stored(const std::string& name) const { return entry(name).stored; }

const TensorView& ModelFile::tensor(const std::string& name) const {
    const Entry& e = entry(name);
    if (!e.widened) return e.view;
    Widened& w = *e.widened;
    std::lock_guard<std::mutex> lock(w.mutex);
    if (!w.view.data) {
        const StoredTensor& t = e.stored;
        w.buffer = PageBuffer(std::size_t(t.elements()));
        if (t.dtype == TensorDType::bf16)
            bf16_to_f32(t.bf16(), t.elements(), w.buffer.data());
        else
            dequantize_s8_rows(t.s8(), t.scales, t.dims[0], t.dims[1], w.buffer.data());
        w.view = {t.dims, w.buffer.data()};
    }
    return w.view;
}

void ModelFile::release(const std::string& name) const {
    const Entry& e = entry(name);
    if (e.widened) {
        std::lock_guard<std::mutex> lock(e.widened->mutex);
        e.widened->buffer = PageBuffer();
        e.widened->view.data = nullptr;
    }
    file_.release(e.stored.data, e.stored.nbytes);
}

void ModelFile::verify_data() const {
    const std::uint32_t crc = crc32_of(file_.data() + data_offset_, file_.size() - data_offset_);
    if (crc != data_crc_) throw Error(path_ + ": tensor data checksum mismatch (file corrupted)");
}

}  // namespace onevit
