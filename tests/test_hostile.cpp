// Hostile input: model files and images from anywhere must never crash, hang
// or silently mislead. Every refusal is an onevit::Error whose message names
// the file (or, for in-memory images, "image data") and the field at fault;
// every case finishes within kCaseSeconds.
//
// Model files are built field by field (tests/fuzz/synthetic.hpp) so that
// hostile values sit behind a valid header checksum, where only validation can
// catch them. A NaN weight behind a valid data checksum is "what the file
// says": the engine does not scan weights (the converter refuses NaN/Inf), so
// the NaN reaches the logits, visibly — see NanWeightIsWhatTheFileSays.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "fuzz/synthetic.hpp"
#include "fuzz/synthetic_images.hpp"
#include "format/model_file.hpp"
#include "model/open_model_file.hpp"
#include "onevit/error.hpp"
#include "onevit/image.hpp"
#include "onevit/model.hpp"

namespace onevit {
namespace {

namespace fs = std::filesystem;
using synthetic::Bytes;
using synthetic::ModelBytes;
using synthetic::Spec;

constexpr double kCaseSeconds = 20;                     // generous: sanitizer builds on a loaded machine
const std::string kDigits = "weights/digits_vit.ovit";  // tests run in the source root

// Every temporary file made, removed when the test program ends.
std::set<std::string>& temp_files() {
    static std::set<std::string> files;
    return files;
}
class RemoveTempFiles : public ::testing::Environment {
    void TearDown() override {
        for (const std::string& path : temp_files()) {
            std::error_code ignored;
            fs::remove(path, ignored);
        }
    }
};
const auto* const kRemoveTempFiles = ::testing::AddGlobalTestEnvironment(new RemoveTempFiles);

// Unique per process and test: ctest -j runs the tests of this file in parallel.
std::string temp_path(const std::string& name) {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string path = ::testing::TempDir() + "onevit_hostile_" + std::to_string(::getpid()) + "_" +
                       (test ? test->name() : "none") + "_" + name;
    temp_files().insert(path);
    return path;
}

void write_file(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
}

Bytes read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

// Runs f; returns the onevit::Error message it throws, "" if it returns.
// Any other exception, or taking longer than kCaseSeconds, is a failure.
template <class F>
std::string error_of(F&& f, const std::string& context = {}) {
    const auto start = std::chrono::steady_clock::now();
    std::string message;
    try {
        f();
    } catch (const Error& e) {
        message = e.what();
        EXPECT_FALSE(message.empty()) << context << ": onevit::Error with an empty message";
    } catch (const std::exception& e) {
        ADD_FAILURE() << context << ": " << typeid(e).name() << " instead of onevit::Error: " << e.what();
        message = "(not an onevit::Error)";
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(seconds, kCaseSeconds) << context;
    return message;
}

// The error that opening `bytes` as a model file must raise; it names the file.
std::string open_error(const Bytes& bytes, const std::string& context = {}) {
    const std::string path = temp_path("model.ovit");
    write_file(path, bytes);
    const std::string message = error_of([&] { open_model_file(path); }, context);
    EXPECT_NE(message, "") << context << ": opened without error";
    EXPECT_NE(message.find(path), std::string::npos) << context << ": " << message;
    return message;
}

Bytes tiny_bytes(const Spec& spec = {}) { return synthetic::tiny_model(spec).bytes(); }

std::uint64_t data_offset_of(const Bytes& b) { return synthetic::get_u64(b, synthetic::kDataOffsetAt); }

// ------------------------------------------------------------ sanity

TEST(HostileModel, SyntheticModelsOpenLoadAndRun) {
    Spec distilled;
    distilled.distilled = true;
    distilled.head_norm = true;
    Spec grey;
    grey.channels = 1;
    grey.labels = false;
    grey.mean_pool = true;
    Spec pooler;  // a pooler / pre-logits layer before the head
    pooler.pool_proj = 5;
    pooler.pool_proj_tanh = true;
    Spec projected = synthetic::zoo_spec();  // a headless model whose embedding is a projection
    projected.pool_proj = 6;
    Spec token_and_mean;  // class token and mean patch token side by side, then a projection
    token_and_mean.token_and_mean = true;
    token_and_mean.pool_proj = 3;
    for (const Spec& spec : {Spec{}, distilled, grey, synthetic::zoo_spec(), pooler, projected, token_and_mean}) {
        const std::string path = temp_path("sane.ovit");
        write_file(path, tiny_bytes(spec));
        ModelFile file = open_model_file(path);
        EXPECT_NO_THROW(file.verify_data());
        Options options;
        options.threads = 1;
        const Model model = Model::load(path, options);
        const std::vector<float> input(std::size_t(spec.channels) * spec.image * spec.image, 0.5f);
        const std::vector<float> logits = model.run(input.data(), 1);
        const int embedding = spec.pool_proj > 0 ? spec.pool_proj : spec.dim;
        ASSERT_EQ(logits.size(), std::size_t(spec.classes > 0 ? spec.classes : embedding));  // headless: the embedding
        ASSERT_EQ(model
                      .embed({Image{spec.image, spec.image, spec.channels,
                                    std::vector<std::uint8_t>(std::size_t(spec.image) * spec.image * spec.channels)}})
                      .size(),
                  std::size_t(embedding));
        for (float v : logits) EXPECT_TRUE(std::isfinite(v));
    }
}

// Version 2 files: each feature set the zoo combines (tests/fuzz/synthetic.hpp modern_model).
std::vector<std::pair<std::vector<std::string>, Spec>> modern_sets() {
    Spec pooled = synthetic::zoo_spec();  // attention pooling, so attn_pool_shape has something to shape
    return {{{"no_pos_embed", "rope", "swiglu"}, Spec{}},
            {{"rms_norm", "qk_norm", "parallel"}, Spec{}},
            {{"post_norm", "rel_pos_bias", "attn_norm", "mlp_norm"}, Spec{}},
            {{"rms_norm", "embed_norm", "swiglu", "mlp_norm"}, Spec{}},
            {{"embed_norm", "rope", "attn_pool_shape"}, pooled}};
}

TEST(HostileModel, SyntheticVersion2ModelsOpenLoadAndRun) {
    for (const auto& [features, spec] : modern_sets()) {
        const std::string path = temp_path("sane_v2.ovit");
        write_file(path, synthetic::modern_model(features, spec).bytes());
        Options options;
        options.threads = 1;
        const Model model = Model::load(path, options);
        EXPECT_EQ(model.info().arch.features, features);
        const std::vector<float> input(std::size_t(spec.channels) * spec.image * spec.image, 0.5f);
        const std::vector<float> out = model.run(input.data(), 1);
        ASSERT_EQ(out.size(), std::size_t(spec.classes > 0 ? spec.classes : spec.dim));
        for (float v : out) EXPECT_TRUE(std::isfinite(v)) << features.front();
    }
}

// ------------------------------------------------------------ truncations and flips

TEST(HostileModel, EveryTruncationOfSyntheticModelsIsRefused) {
    Spec distilled;
    distilled.distilled = true;
    Spec no_proj;
    no_proj.attn_proj = false;
    no_proj.qkv_bias = false;
    no_proj.final_norm = false;
    for (const Spec& spec : {Spec{}, distilled, no_proj, synthetic::zoo_spec()}) {
        const Bytes whole = tiny_bytes(spec);
        for (std::size_t length = 0; length < whole.size(); ++length) {
            const Bytes cut(whole.begin(), whole.begin() + std::ptrdiff_t(length));
            open_error(cut, "length " + std::to_string(length));
            if (::testing::Test::HasFailure()) return;  // one report, not thousands
        }
    }
}

TEST(HostileModel, TruncationsOfTheBundledModelAreRefused) {
    const Bytes whole = read_file(kDigits);
    ASSERT_GT(whole.size(), 4096u) << kDigits;
    const std::uint64_t data_offset = data_offset_of(whole);
    std::vector<std::size_t> lengths;
    for (std::size_t n = 0; n <= data_offset + 64; ++n) lengths.push_back(n);  // the whole header
    std::mt19937 rng(11);
    for (int i = 0; i < 100; ++i) lengths.push_back(data_offset + rng() % (whole.size() - data_offset));
    lengths.push_back(whole.size() - 1);
    for (std::size_t length : lengths) {
        open_error(Bytes(whole.begin(), whole.begin() + std::ptrdiff_t(length)), "length " + std::to_string(length));
        if (::testing::Test::HasFailure()) return;
    }
    // Through the public API too: the message names the file.
    const std::string path = temp_path("cut.ovit");
    write_file(path, Bytes(whole.begin(), whole.begin() + std::ptrdiff_t(whole.size() / 2)));
    EXPECT_NE(error_of([&] { Model::load(path); }).find(path), std::string::npos);
}

// Issue 25: a file cut short says so, with its size and what its header needs,
// wherever the cut falls (not a checksum, alignment or range complaint).
TEST(HostileModel, TruncationsSayTruncatedAndHowLong) {
    const Bytes whole = read_file(kDigits);
    const std::uint64_t data_offset = data_offset_of(whole);
    std::vector<std::size_t> lengths;
    for (std::size_t n = 1; n < 64; ++n) lengths.push_back(n);  // 0 bytes: "file is empty"
    for (std::size_t n : {data_offset / 2, data_offset - 1, data_offset + 1, whole.size() / 2, whole.size() - 1})
        lengths.push_back(n);
    for (std::size_t length : lengths) {
        const std::string message = open_error(Bytes(whole.begin(), whole.begin() + std::ptrdiff_t(length)),
                                               "length " + std::to_string(length));
        const std::string expected = "truncated (" + std::to_string(length) + " bytes, ";
        EXPECT_NE(message.find(expected), std::string::npos) << "length " << length << ": " << message;
        if (length >= 32 && length < data_offset) {
            EXPECT_NE(message.find("the header needs " + std::to_string(data_offset) + ")"), std::string::npos)
                << message;
        }
        if (::testing::Test::HasFailure()) return;
    }
}

TEST(HostileModel, RandomHeaderFlipsAreRefused) {
    const Bytes whole = tiny_bytes();
    const std::uint64_t data_offset = data_offset_of(whole);
    std::mt19937 rng(12345);
    for (int trial = 0; trial < 1500; ++trial) {
        Bytes bytes = whole;
        const int flips = 1 + int(rng() % 4);
        for (int f = 0; f < flips; ++f) bytes[rng() % data_offset] ^= std::uint8_t(1 + rng() % 255);
        if (bytes == whole) continue;
        open_error(bytes, "trial " + std::to_string(trial));
        if (::testing::Test::HasFailure()) return;
    }
}

// With the checksums recomputed, the parser itself meets every flipped byte:
// it must refuse or accept, never crash, and an accepted file must load.
TEST(HostileModel, RandomResealedFlipsAreRefusedOrConsistent) {
    const Bytes whole = tiny_bytes();
    const std::uint64_t data_offset = data_offset_of(whole);
    const std::string path = temp_path("flipped.ovit");
    std::mt19937 rng(777);
    int accepted = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        Bytes bytes = whole;
        const int flips = 1 + int(rng() % 3);
        for (int f = 0; f < flips; ++f)
            bytes[synthetic::kFixedHeader + rng() % (data_offset - synthetic::kFixedHeader)] ^=
                std::uint8_t(1u << (rng() % 8));
        synthetic::reseal(bytes);
        write_file(path, bytes);
        bool opened = false;
        const std::string message = error_of(
            [&] {
                ModelFile file = open_model_file(path);
                opened = true;
                file.verify_data();
                if (accepted++ < 50) {  // loading builds primitives: a sample is enough
                    Options options;
                    options.threads = 1;
                    Model::load(path, options);
                }
            },
            "trial " + std::to_string(trial));
        if (!opened) {
            EXPECT_NE(message.find(path), std::string::npos) << message;
        }
        if (::testing::Test::HasFailure()) return;
    }
}

TEST(HostileModel, DataFlipsPassOpeningAndFailVerification) {
    const Bytes whole = tiny_bytes();
    const std::uint64_t data_offset = data_offset_of(whole);
    const std::string path = temp_path("data_flip.ovit");
    std::mt19937 rng(99);
    for (int trial = 0; trial < 200; ++trial) {
        Bytes bytes = whole;
        bytes[data_offset + rng() % (whole.size() - data_offset)] ^= std::uint8_t(1 + rng() % 255);
        write_file(path, bytes);
        ModelFile file = open_model_file(path);  // loading does not hash the weights
        const std::string message = error_of([&] { file.verify_data(); });
        EXPECT_NE(message.find("checksum"), std::string::npos) << message;
        EXPECT_NE(message.find(path), std::string::npos) << message;
    }
    Options options;
    options.threads = 1;
    const Model model = Model::load(path, options);
    EXPECT_NE(error_of([&] { model.verify(); }).find("checksum"), std::string::npos);
}

// ------------------------------------------------------------ hostile fields, valid checksum

struct FieldCase {
    std::string name;
    Bytes bytes;
    std::vector<std::string> expected;  // each must appear in the message
};

constexpr std::uint32_t kHuge32 = 0xFFFFFFFFu;
constexpr std::uint64_t kHuge64 = 0xFFFFFFFFFFFFFFC0ull;  // 64-aligned, so only its size is wrong

// Offset of the bytes right after `key` (as stored: length, then key bytes).
std::size_t after_key(const Bytes& b, const std::string& key) {
    Bytes stored;
    synthetic::put_string(stored, key);
    for (std::size_t i = 0; i + stored.size() <= b.size(); ++i)
        if (std::equal(stored.begin(), stored.end(), b.begin() + std::ptrdiff_t(i))) return i + stored.size();
    ADD_FAILURE() << "no key " << key;
    return 0;
}

Bytes patched_u32(Bytes b, std::size_t at, std::uint32_t v) {
    synthetic::set_u32(b, at, v);
    synthetic::reseal(b);
    return b;
}
Bytes patched_u64(Bytes b, std::size_t at, std::uint64_t v) {
    synthetic::set_u64(b, at, v);
    synthetic::reseal(b);
    return b;
}

std::vector<FieldCase> field_cases() {
    std::vector<FieldCase> cases;
    const Bytes good = tiny_bytes();
    auto model = [](auto&& change) {
        ModelBytes m = synthetic::tiny_model();
        change(m);
        return m.bytes();
    };
    auto add = [&](std::string name, Bytes bytes, std::vector<std::string> expected) {
        cases.push_back({std::move(name), std::move(bytes), std::move(expected)});
    };

    // The fixed header.
    add("version", patched_u32(good, 8, 2), {"version 2"});
    add("reserved", patched_u32(good, 28, 1), {"reserved"});
    add("data_offset huge", patched_u64(good, 16, kHuge64), {"data_offset"});
    add("data_offset unaligned", patched_u64(good, 16, 96 + 1), {"data_offset"});
    add("data_offset zero", patched_u64(good, 16, 0), {"data_offset"});
    add("data_offset at end of file",
        [&] {
            Bytes b = good;
            b.resize((b.size() + 63) / 64 * 64, 0);
            return patched_u64(b, 16, b.size());
        }(),
        {"truncated"});

    // Counts and lengths far beyond the file.
    add("metadata count huge", model([](ModelBytes& m) { m.entry_count = 0xFFFFFFFFu; }), {"metadata count"});
    add("metadata count 4097", model([](ModelBytes& m) { m.entry_count = 4097; }), {"metadata count"});
    add("metadata count one too many",
        model([](ModelBytes& m) { m.entry_count = std::uint32_t(m.entries.size() + 1); }), {});
    add("metadata count zero", model([](ModelBytes& m) { m.entry_count = 0; }), {"metadata key"});
    add("key length huge", patched_u32(good, after_key(good, "arch.dim") - 8 - 4, kHuge32), {"metadata key length"});
    add("key length 257", patched_u32(good, after_key(good, "arch.dim") - 8 - 4, 257), {"metadata key length"});
    add("string length huge", patched_u32(good, after_key(good, "arch.family") + 4, kHuge32), {"arch.family length"});
    add("string length past the header", patched_u32(good, after_key(good, "arch.family") + 4, 4000),
        {"truncated", "arch.family"});
    add("f32 array count huge", patched_u32(good, after_key(good, "preprocess.mean") + 4, kHuge32),
        {"preprocess.mean", "array length"});
    add("string array count huge", patched_u32(good, after_key(good, "labels") + 4, kHuge32),
        {"labels", "array length"});
    add("string array count under the cap", patched_u32(good, after_key(good, "labels") + 4, 999'999),
        {"labels", "array length"});
    add("label length huge", patched_u32(good, after_key(good, "labels") + 8, kHuge32), {"labels length"});
    add("unknown metadata type", patched_u32(good, after_key(good, "arch.depth"), 7), {"arch.depth", "type 7"});
    add("tensor count huge", model([](ModelBytes& m) { m.tensor_count = 0xFFFFFFFFu; }), {"tensor count"});
    add("tensor count one too many", model([](ModelBytes& m) { m.tensor_count = std::uint32_t(m.tensors.size() + 1); }),
        {});
    add("tensor name length huge", patched_u32(good, after_key(good, "head.bias") - 9 - 4, kHuge32),
        {"tensor name length"});

    // Architecture values.
    add("dim huge", patched_u32(good, after_key(good, "arch.dim") + 4, kHuge32), {"arch.dim"});
    add("depth zero", patched_u32(good, after_key(good, "arch.depth") + 4, 0), {"arch.depth"});
    add("too many tokens", model([](ModelBytes& m) {
            m.entries[1] = synthetic::u32_entry("arch.image_height", 16384);
            m.entries[2] = synthetic::u32_entry("arch.image_width", 16384);
            m.entries[4] = synthetic::u32_entry("arch.patch_size", 1);
        }),
        {"too many tokens"});
    add("heads x head_dim", model([](ModelBytes& m) {
            *m.entry("arch.heads") = synthetic::u32_entry("arch.heads", 1024);
            *m.entry("arch.head_dim") = synthetic::u32_entry("arch.head_dim", 65536);
        }),
        {"heads x head_dim"});
    add("norm_eps NaN",
        model([](ModelBytes& m) { *m.entry("arch.norm_eps") = synthetic::f32_entry("arch.norm_eps", std::nanf("")); }),
        {"arch.norm_eps"});
    add("attn_scale infinite",
        model([](ModelBytes& m) { *m.entry("arch.attn_scale") = synthetic::f32_entry("arch.attn_scale", INFINITY); }),
        {"arch.attn_scale"});
    add("std zero", model([](ModelBytes& m) {
            *m.entry("preprocess.std") = synthetic::f32_array_entry("preprocess.std", {0.25f, 0.f, 0.25f});
        }),
        {"preprocess.mean/std"});
    add("mean NaN", model([](ModelBytes& m) {
            *m.entry("preprocess.mean") = synthetic::f32_array_entry("preprocess.mean", {0.5f, std::nanf(""), 0.5f});
        }),
        {"preprocess.mean/std"});
    add("wrong type", model([](ModelBytes& m) { *m.entry("arch.dim") = synthetic::f32_entry("arch.dim", 4.f); }),
        {"arch.dim", "wrong type"});
    add("missing key", model([](ModelBytes& m) { m.entries.erase(m.entries.begin() + 6); }), {"arch.depth"});
    add("duplicate key", model([](ModelBytes& m) { m.entries.push_back(m.entries[5]); }), {"duplicate", "arch.dim"});
    add("invalid key", model([](ModelBytes& m) { m.entries.push_back(synthetic::u32_entry("Arch.Dim", 1)); }),
        {"invalid metadata key"});
    add("unknown choice",
        model([](ModelBytes& m) { *m.entry("arch.gelu") = synthetic::string_entry("arch.gelu", "relu"); }),
        {"arch.gelu", "relu"});
    add("class_token out of range",
        model([](ModelBytes& m) { m.entries.push_back(synthetic::u32_entry("arch.class_token", 2)); }),
        {"arch.class_token", "outside [0, 1]"});
    add("norm_pre out of range",
        model([](ModelBytes& m) { m.entries.push_back(synthetic::u32_entry("arch.norm_pre", 7)); }),
        {"arch.norm_pre", "outside [0, 1]"});
    add("too many prefix tokens",
        model([](ModelBytes& m) { *m.entry("arch.prefix_tokens") = synthetic::u32_entry("arch.prefix_tokens", 65); }),
        {"arch.prefix_tokens", "outside [0, 64]"});
    add("pool_proj_act without pool_proj",
        model([](ModelBytes& m) { m.entries.push_back(synthetic::string_entry("arch.pool_proj_act", "tanh")); }),
        {"arch.pool_proj_act", "needs arch.pool_proj"});
    add("unknown pool_proj_act",
        [] {
            Spec s;
            s.pool_proj = 5;
            ModelBytes m = synthetic::tiny_model(s);
            *m.entry("arch.pool_proj_act") = synthetic::string_entry("arch.pool_proj_act", "relu");
            return m.bytes();
        }(),
        {"arch.pool_proj_act", "relu"});
    add("token_and_mean_patches with a head norm",
        [] {
            Spec s;
            s.token_and_mean = true;
            s.head_norm = true;
            return synthetic::tiny_model(s).bytes();
        }(),
        {"token_and_mean_patches", "head norm"});
    add("token_and_mean_patches without a class token",
        [] {
            Spec s = synthetic::zoo_spec();
            s.map_pool = false;
            s.token_and_mean = true;
            return synthetic::tiny_model(s).bytes();
        }(),
        {"token_and_mean_patches", "needs a class token"});
    add("pool_proj with a distilled head",
        [] {
            Spec s;
            s.distilled = true;
            ModelBytes m = synthetic::tiny_model(s);
            m.entries.push_back(synthetic::u32_entry("arch.pool_proj", 5));
            return m.bytes();
        }(),
        {"arch.pool_proj", "distilled"});
    add("pool_proj width disagrees with its tensor",
        [] {
            Spec s;
            s.pool_proj = 5;
            ModelBytes m = synthetic::tiny_model(s);
            *m.entry("arch.pool_proj") = synthetic::u32_entry("arch.pool_proj", 6);
            return m.bytes();
        }(),
        {"has shape [3, 5]", "needs [3, 6]"});  // head.weight: the first in name order
    add("token pooling without a class token",
        model([](ModelBytes& m) { m.entries.push_back(synthetic::u32_entry("arch.class_token", 0)); }),
        {"arch.pool", "class token"});
    add("no head with classes",
        model([](ModelBytes& m) { *m.entry("arch.head") = synthetic::string_entry("arch.head", "none"); }),
        {"arch.head", "num_classes = 0"});
    add("classes zero with a head",
        model([](ModelBytes& m) { *m.entry("arch.num_classes") = synthetic::u32_entry("arch.num_classes", 0); }),
        {"arch.head", "num_classes = 0"});
    add("resize_size zero", model([](ModelBytes& m) {
            *m.entry("preprocess.resize_size") = synthetic::u32_entry("preprocess.resize_size", 0);
        }),
        {"resize_size"});
    add("label count", model([](ModelBytes& m) {
            *m.entry("labels") = synthetic::string_array_entry("labels", {"a", "b"});
        }),
        {"labels has 2"});
    add("escape sequence in the embedding's description",
        model([](ModelBytes& m) { m.entries.push_back(synthetic::string_entry("embedding", "pooled \x1b[2J")); }),
        {"embedding", "control character (byte 27)"});
    add("control character in a label", model([](ModelBytes& m) {
            *m.entry("labels") = synthetic::string_array_entry("labels", {"cat", "dog\n  1  99.00%  2  bird", "x"});
        }),
        {"labels", "control character"});

    // Tensor records.
    add("ndim zero", model([](ModelBytes& m) { m.tensor("head.bias")->dims = {}; }), {"head.bias", "ndim 0"});
    add("ndim five", model([](ModelBytes& m) {
            m.tensor("head.bias")->dims = {1, 1, 1, 1, 3};
        }),
        {"head.bias", "ndim 5"});
    add("dimension zero", model([](ModelBytes& m) { m.tensor("head.bias")->dims = {0}; }),
        {"head.bias", "dimension 0"});
    add("dimension huge", model([](ModelBytes& m) { m.tensor("head.bias")->dims = {1ull << 40}; }),
        {"head.bias", "out of range"});
    add("element count overflows", model([](ModelBytes& m) {
            m.tensor("head.bias")->dims = {1ull << 32, 1ull << 32, 1ull << 32, 1ull << 32};
        }),
        {"head.bias", "overflows"});
    add("nbytes disagrees", model([](ModelBytes& m) { m.tensor("head.bias")->nbytes = 16; }), {"head.bias", "nbytes"});
    add("nbytes huge", model([](ModelBytes& m) { m.tensor("head.bias")->nbytes = 0xFFFFFFFFFFFFFFFFull; }),
        {"head.bias", "nbytes"});
    add("dtype unknown", model([](ModelBytes& m) { m.tensor("head.bias")->dtype = 3; }),
        {"head.bias", "unsupported dtype 3"});
    add("dtype huge", model([](ModelBytes& m) { m.tensor("head.bias")->dtype = kHuge32; }),
        {"head.bias", "unsupported dtype"});
    add("bf16 bias", model([](ModelBytes& m) { m.tensor("head.bias")->dtype = synthetic::kBF16; }),
        {"head.bias", "dtype 1", "only linear weights"});
    add("bf16 position embedding", model([](ModelBytes& m) { m.tensor("pos_embed")->dtype = synthetic::kBF16; }),
        {"pos_embed", "only linear weights"});
    add("int8 one-dimensional", model([](ModelBytes& m) { m.tensor("head.bias")->dtype = synthetic::kInt8; }),
        {"head.bias", "int8 tensor needs 2 dimensions"});
    add("int8 class token", model([](ModelBytes& m) { m.tensor("prefix_tokens")->dtype = synthetic::kInt8; }),
        {"prefix_tokens", "dtype 2", "only linear weights"});
    add("bf16 nbytes of f32", model([](ModelBytes& m) {
            m.tensor("head.weight")->dtype = synthetic::kBF16;
            m.tensor("head.weight")->nbytes = 3 * 4 * 4;
        }),
        {"head.weight", "nbytes 48", "bf16 (24)"});
    add("int8 nbytes without scales", model([](ModelBytes& m) {
            m.tensor("head.weight")->dtype = synthetic::kInt8;
            m.tensor("head.weight")->nbytes = 64;
        }),
        {"head.weight", "nbytes 64", "int8 (76)"});
    add("int8 scales past the end",
        [] {
            ModelBytes m = synthetic::tiny_model();
            m.tensor("head.weight")->dtype = synthetic::kInt8;  // 12 s8 values, padding, 3 scales: 76 bytes
            const Bytes b = m.bytes();
            const std::uint64_t data_bytes = b.size() - data_offset_of(b);  // ends with head.bias, 12 bytes
            m.tensor("head.weight")->offset = data_bytes - 12;              // the values fit, the scales do not
            return m.bytes();
        }(),
        {"head.weight", "truncated"});
    for (const auto& [what, scale] :
         {std::pair<const char*, float>{"NaN", std::nanf("")}, {"infinite", INFINITY}, {"negative", -0.5f}}) {
        add(std::string("int8 scale ") + what, model([scale = scale](ModelBytes& m) {
                synthetic::Tensor& t = *m.tensor("blocks.0.mlp.fc1.weight");
                t.dtype = synthetic::kInt8;
                t.scales = std::vector<float>(t.dims[0], 0.01f);
                (*t.scales)[5] = scale;
            }),
            {"blocks.0.mlp.fc1.weight", "scale of row 5"});
    }
    add("offset unaligned", model([](ModelBytes& m) { m.tensor("head.bias")->offset = 4; }),
        {"head.bias", "64-byte aligned"});
    add("offset outside the file", model([](ModelBytes& m) { m.tensor("head.bias")->offset = 1ull << 40; }),
        {"head.bias", "truncated"});
    add("offset wraps around", model([](ModelBytes& m) { m.tensor("head.bias")->offset = kHuge64; }),
        {"head.bias", "truncated", "beyond any file"});
    add("overlapping tensors", model([](ModelBytes& m) { m.tensors[1].offset = 0; }), {"overlaps"});
    add("tensors out of order", model([](ModelBytes& m) {
            m.tensors[0].offset = 256;  // patch_embed.weight after patch_embed.bias
            m.tensors[1].offset = 0;
        }),
        {"out of order"});
    add("last tensor past the end",
        [&] {
            Bytes b = good;
            b.resize(b.size() - 4);
            synthetic::reseal(b);
            return b;
        }(),
        {"head.bias", "truncated"});
    add("duplicate tensor", model([](ModelBytes& m) { m.tensors.push_back(m.tensors.back()); }),
        {"duplicate tensor head.bias"});
    add("empty tensor name", model([](ModelBytes& m) { m.tensor("head.bias")->name = ""; }), {"empty tensor name"});
    add("missing tensor", model([](ModelBytes& m) { m.tensors.pop_back(); }), {"missing tensors: head.bias"});
    add("unexpected tensor", model([](ModelBytes& m) {
            m.tensors.push_back({"head.extra", {4}, std::vector<float>(4, 0.f)});
        }),
        {"unexpected tensors: head.extra"});
    add("wrong shape", model([](ModelBytes& m) {
            m.tensor("head.weight")->dims = {4, 3};
        }),
        {"head.weight", "shape [4, 3]"});

    // Version 2: the features and what they read (weights/FORMAT.md, "Features (version 2)").
    const auto v2 = [](std::vector<std::string> features, auto&& change, Spec spec = {}) {
        ModelBytes m = synthetic::modern_model(features, spec);
        change(m);
        return m.bytes();
    };
    const auto as_is = [](ModelBytes&) {};
    const auto reshape = [](const char* name, std::vector<std::uint64_t> dims) {  // values to match
        return [name, dims](ModelBytes& m) {
            std::uint64_t count = 1;
            for (auto d : dims) count *= d;
            *m.tensor(name) = {name, dims, std::vector<float>(count, 0.25f)};
        };
    };
    const auto set = [](const char* key, synthetic::Entry e) { return [key, e](ModelBytes& m) { *m.entry(key) = e; }; };
    add("unknown feature", v2({"rope", "differential_attention"}, as_is),
        {"feature 'differential_attention' is not supported"});
    add("feature listed twice", v2({"swiglu", "swiglu"}, as_is), {"feature 'swiglu' is listed twice"});
    add("version 2 without arch.features",
        v2({},
           [](ModelBytes& m) {
               m.entries.erase(std::find_if(m.entries.begin(), m.entries.end(),
                                            [](const synthetic::Entry& e) { return e.key == "arch.features"; }));
           }),
        {"missing metadata key arch.features"});
    add("arch.features in a version 1 file", v2({"swiglu"}, [](ModelBytes& m) { m.version = 1; }),
        {"arch.features needs model file version 2"});
    add("arch.features not a string array",
        v2({"rope"}, set("arch.features", synthetic::string_entry("arch.features", "rope"))),
        {"arch.features", "wrong type"});
    add("rope without its table",
        v2({"rope"},
           [](ModelBytes& m) { m.tensors.erase(m.tensors.begin() + (m.tensor("rope.sin") - m.tensors.data())); }),
        {"missing tensors: rope.sin"});
    add("rope table of the wrong shape", v2({"rope"}, reshape("rope.cos", {5, 3})), {"rope.cos", "shape [5, 3]"});
    add("rope layout unknown",
        v2({"rope"}, set("arch.rope_layout", synthetic::string_entry("arch.rope_layout", "diagonal"))),
        {"arch.rope_layout", "diagonal"});
    add("rope layout none", v2({"rope"}, set("arch.rope_layout", synthetic::string_entry("arch.rope_layout", "none"))),
        {"arch.rope_layout = \"none\" with feature 'rope'"});
    add("rope layout missing",
        v2({"rope"},
           [](ModelBytes& m) {
               m.entries.erase(std::find_if(m.entries.begin(), m.entries.end(),
                                            [](const synthetic::Entry& e) { return e.key == "arch.rope_layout"; }));
           }),
        {"arch.rope_layout"});
    add("rope_per_block out of range",
        v2({"rope"}, set("arch.rope_per_block", synthetic::u32_entry("arch.rope_per_block", 2))),
        {"arch.rope_per_block", "outside [0, 1]"});
    add("rope per block without the tables",
        v2({"rope"}, set("arch.rope_per_block", synthetic::u32_entry("arch.rope_per_block", 1))),
        {"blocks.0.attn.rope.cos"});
    add("rope with an odd head_dim",
        [] {
            Spec s;
            s.heads = 1, s.head_dim = 3;
            return synthetic::modern_model({"rope"}, s).bytes();
        }(),
        {"RoPE needs an even head_dim"});
    add("q_norm missing",
        v2({"qk_norm"},
           [](ModelBytes& m) {
               m.tensors.erase(m.tensors.begin() + (m.tensor("blocks.0.attn.q_norm.weight") - m.tensors.data()));
           }),
        {"missing tensors: blocks.0.attn.q_norm.weight"});
    add("q_norm of the wrong width", v2({"qk_norm"}, reshape("blocks.0.attn.q_norm.weight", {4})),
        {"blocks.0.attn.q_norm.weight", "shape [4]"});
    add("swiglu with one half of fc1", v2({"swiglu"}, reshape("blocks.0.mlp.fc1.weight", {8, 4})),
        {"blocks.0.mlp.fc1.weight", "shape [8, 4]", "needs [16, 4]"});
    add("swiglu and parallel", v2({"swiglu", "parallel"}, as_is), {"'swiglu' and 'parallel'"});
    for (const auto& order : {std::vector<std::string>{"post_norm", "parallel"}, {"parallel", "post_norm"}})
        add("post_norm and parallel", v2(order, as_is), {"'post_norm' and 'parallel'"});
    add("rel_pos_bias of the wrong shape", v2({"rel_pos_bias"}, reshape("blocks.0.attn.rel_pos_bias", {2, 5, 4})),
        {"blocks.0.attn.rel_pos_bias", "shape [2, 5, 4]"});
    add("rel_pos_bias missing",
        v2({"rel_pos_bias"},
           [](ModelBytes& m) {
               m.tensors.erase(m.tensors.begin() + (m.tensor("blocks.0.attn.rel_pos_bias") - m.tensors.data()));
           }),
        {"missing tensors: blocks.0.attn.rel_pos_bias"});
    add("rms_norm with LayerNorm shifts",
        v2({"rms_norm"},
           [](ModelBytes& m) {
               m.tensors.push_back({"blocks.0.norm1.bias", {4}, std::vector<float>(4, 0.f)});
           }),
        {"unexpected tensors: blocks.0.norm1.bias"});
    add("no_pos_embed with a position table",
        v2({"no_pos_embed"},
           [](ModelBytes& m) {
               m.tensors.push_back({"pos_embed", {5, 4}, std::vector<float>(20, 0.f)});
           }),
        {"unexpected tensors: pos_embed"});
    add("pool_heads zero",
        v2({"attn_pool_shape"}, set("arch.pool_heads", synthetic::u32_entry("arch.pool_heads", 0)),
           synthetic::zoo_spec()),
        {"arch.pool_heads"});
    add("pool_heads not dividing dim",
        v2({"attn_pool_shape"}, set("arch.pool_heads", synthetic::u32_entry("arch.pool_heads", 3)),
           synthetic::zoo_spec()),
        {"dim divisible by the pooling heads"});
    add("pool_mlp_dim huge",
        v2({"attn_pool_shape"}, set("arch.pool_mlp_dim", synthetic::u32_entry("arch.pool_mlp_dim", kHuge32)),
           synthetic::zoo_spec()),
        {"arch.pool_mlp_dim"});
    add("pool_prefix out of range",
        v2({"attn_pool_shape"}, set("arch.pool_prefix", synthetic::u32_entry("arch.pool_prefix", 2)),
           synthetic::zoo_spec()),
        {"arch.pool_prefix", "outside [0, 1]"});
    return cases;
}

TEST(HostileModel, HostileFieldsBehindValidChecksumAreNamed) {
    for (const FieldCase& c : field_cases()) {
        const std::string message = open_error(c.bytes, c.name);
        for (const std::string& part : c.expected)
            EXPECT_NE(message.find(part), std::string::npos) << c.name << " → " << message;
    }
}

// Every hostile-field file, cut at every length: still refused, still bounded.
TEST(HostileModel, TruncatedHostileFieldsAreRefused) {
    std::mt19937 rng(5);
    for (const FieldCase& c : field_cases()) {
        for (int i = 0; i < 20; ++i) {
            const std::size_t length = rng() % c.bytes.size();
            open_error(Bytes(c.bytes.begin(), c.bytes.begin() + std::ptrdiff_t(length)),
                       c.name + " cut at " + std::to_string(length));
        }
    }
}

TEST(HostileModel, NanWeightIsWhatTheFileSays) {
    // Documented behaviour: the engine does not scan weights for NaN/Inf at
    // load (weights/convert.py refuses them); a file whose data checksum
    // matches is taken at its word, and the NaN shows in the output.
    ModelBytes m = synthetic::tiny_model();
    m.tensor("head.bias")->values[1] = std::nanf("");
    const std::string path = temp_path("nan.ovit");
    write_file(path, m.bytes());
    Options options;
    options.threads = 1;
    const Model model = Model::load(path, options);
    EXPECT_NO_THROW(model.verify());
    const std::vector<float> input(3 * 4 * 4, 0.5f);
    const std::vector<float> logits = model.run(input.data(), 1);
    EXPECT_TRUE(std::isfinite(logits[0]));
    EXPECT_TRUE(std::isnan(logits[1]));
    EXPECT_TRUE(std::isfinite(logits[2]));
    // A NaN has no rank: top_k says so rather than sorting on an invalid order.
    EXPECT_THROW(top_k(logits.data(), 3, 3, model.info().labels), Error);
}

// ------------------------------------------------------------ paths

// Opens a FIFO without a writer through f on another thread: f must refuse it
// at once, not wait for a writer. If it does block, a writer is attached so the
// thread (and the test) can finish.
template <class F>
void expect_fifo_refused(const std::string& fifo, F f) {
    auto done = std::async(std::launch::async, [&] { return error_of(f, fifo); });
    if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
        ADD_FAILURE() << fifo << ": blocked opening a FIFO";
        const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
        if (fd >= 0) ::close(fd);
    }
    const std::string message = done.get();
    EXPECT_NE(message.find(fifo), std::string::npos) << message;
}

TEST(HostilePaths, ModelPaths) {
    const std::string dir = ::testing::TempDir();
    const std::string missing = temp_path("missing/model.ovit");
    const std::string empty = temp_path("empty.ovit");
    write_file(empty, {});
    const std::string loop = temp_path("loop.ovit");
    fs::remove(loop);
    fs::create_symlink(loop, loop);
    for (const std::string& path : {missing, dir, empty, loop, std::string("/dev/null"), std::string("/dev/zero"),
                                    std::string("/proc/self/status")}) {
        const std::string message = error_of([&] { Model::load(path); }, path);
        EXPECT_NE(message, "") << path;
        EXPECT_NE(message.find(path), std::string::npos) << message;
    }
    EXPECT_NE(error_of([] { Model::load(""); }), "");
    // A NUL inside the name would silently open a different file.
    write_file(temp_path("real.ovit"), read_file(kDigits));
    const std::string with_nul = temp_path("real.ovit") + std::string(1, '\0') + "suffix";
    EXPECT_NE(error_of([&] { Model::load(with_nul); }).find("NUL"), std::string::npos);

    const std::string fifo = temp_path("model.fifo");
    fs::remove(fifo);
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    expect_fifo_refused(fifo, [&] { open_model_file(fifo); });
    fs::remove(fifo);
    fs::remove(loop);
}

TEST(HostilePaths, ImagePaths) {
    const std::string dir = ::testing::TempDir();
    const std::string missing = temp_path("missing/image.png");
    const std::string empty = temp_path("empty.png");
    write_file(empty, {});
    for (const std::string& path :
         {missing, dir, empty, std::string("/dev/null"), std::string("/dev/zero"), std::string("/proc/self/status")}) {
        const std::string message = error_of([&] { decode_image(path); }, path);
        EXPECT_NE(message, "") << path;
        EXPECT_NE(message.find(path), std::string::npos) << message;
    }
    EXPECT_NE(error_of([] { decode_image(""); }), "");
    const std::string with_nul = "weights/samples/digit_0_24.png" + std::string(1, '\0') + ".jpg";
    EXPECT_NE(error_of([&] { decode_image(with_nul); }).find("NUL"), std::string::npos);

    const std::string fifo = temp_path("image.fifo");
    fs::remove(fifo);
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    expect_fifo_refused(fifo, [&] { decode_image(fifo); });
    fs::remove(fifo);
}

TEST(HostilePaths, HugeSparseImageFileIsRefusedWithoutReadingIt) {
    const std::string path = temp_path("sparse.png");
    write_file(path, synthetic::png_header_only(64, 64));
    if (::truncate(path.c_str(), off_t(1) << 36) != 0)  // 64 GiB of holes
        GTEST_SKIP() << "this file system cannot hold a 64 GiB sparse file";
    const std::string message = error_of([&] { decode_image(path); }, path);
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("too large"), std::string::npos) << message;
    fs::remove(path);
}

// ------------------------------------------------------------ images

struct Sample {
    std::string name;
    Bytes bytes;
};

std::vector<Sample> image_samples() {
    std::vector<Sample> samples;
    using synthetic::JpegOptions;
    using synthetic::PngOptions;
    for (int color_type : {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA, PNG_COLOR_TYPE_PALETTE}) {
        for (bool interlace : {false, true}) {
            PngOptions o;
            o.width = 11;
            o.height = 9;
            o.color_type = color_type;
            o.bit_depth = color_type == PNG_COLOR_TYPE_PALETTE ? 4 : 8;
            o.interlace = interlace;
            samples.push_back({"png type " + std::to_string(color_type) + (interlace ? " interlaced" : ""),
                               synthetic::encode_png(o)});
        }
    }
    for (int components : {1, 3, 4}) {
        for (bool progressive : {false, true}) {
            JpegOptions o;
            o.components = components;
            o.progressive = progressive;
            samples.push_back({"jpeg " + std::to_string(components) + (progressive ? " progressive" : ""),
                               synthetic::encode_jpeg(o)});
        }
    }
    JpegOptions restarts;
    restarts.restart_rows = 1;
    samples.push_back({"jpeg restarts", synthetic::encode_jpeg(restarts)});
    JpegOptions arithmetic;
    arithmetic.arithmetic = true;
    samples.push_back({"jpeg arithmetic", synthetic::encode_jpeg(arithmetic)});
    for (const char* name : {"lossy.webp", "lossless.webp", "alpha.webp", "palette4.bmp", "rgb565.bmp",
                             "xbgr_topdown.bmp", "lzw.tif", "jpeg.tif", "tiled.tif", "rgb16.tif"}) {
        std::ifstream in(std::string(ONEVIT_TEST_DATA_DIR) + "/images/" + name, std::ios::binary);
        samples.push_back({name, Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>())});
    }
    return samples;
}

bool is_png(const Bytes& b) { return !b.empty() && b[0] == 0x89; }
bool is_jpeg(const Bytes& b) { return !b.empty() && b[0] == 0xFF; }

Image decode_bytes(const Bytes& b, int channels = 3) {
    DecodeLimits limits;
    limits.max_pixels = 1 << 20;
    return decode_image_bytes(b.data(), b.size(), channels, limits);
}

// Cut at every length, a file is refused — or decodes to exactly the pixels of
// the whole file: a PNG cut only inside its final IEND chunk (which PIL does
// not need either), a TIFF whose last bytes nothing reads. A truncation never
// yields different pixels, and a JPEG, WebP or BMP cut anywhere is refused.
TEST(HostileImage, EveryTruncationIsRefusedOrExact) {
    for (const Sample& s : image_samples()) {
        const Image whole = decode_bytes(s.bytes);
        std::size_t accepted = 0;
        for (std::size_t length = 0; length < s.bytes.size(); ++length) {
            const Bytes cut(s.bytes.begin(), s.bytes.begin() + std::ptrdiff_t(length));
            Image image;
            const std::string message = error_of([&] { image = decode_bytes(cut); }, s.name);
            if (message.empty()) {
                ++accepted;
                EXPECT_EQ(image.pixels, whole.pixels) << s.name << " cut at " << length;
                if (is_png(s.bytes)) {
                    EXPECT_GE(length, s.bytes.size() - 12) << s.name << " cut at " << length << " was accepted";
                }
            } else {
                EXPECT_NE(message.find("image data"), std::string::npos) << message;
            }
        }
        if (!is_png(s.bytes) && s.name.find(".tif") == std::string::npos) {
            EXPECT_EQ(accepted, 0u) << s.name;
        }
    }
}

// Inputs libFuzzer found (tests/data/hostile): each is refused or decodes consistently
// (under the sanitizers: without reading outside any buffer).
TEST(HostileImage, FuzzFindingsAreHandled) {
    int files = 0;
    for (const auto& entry : fs::directory_iterator(std::string(ONEVIT_TEST_DATA_DIR) + "/hostile")) {
        ++files;
        std::ifstream in(entry.path(), std::ios::binary);
        const Bytes bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        for (int channels : {1, 3}) {
            Image image;
            if (error_of([&] { image = decode_bytes(bytes, channels); }, entry.path().string()).empty()) {
                EXPECT_EQ(image.pixels.size(), std::size_t(image.width) * image.height * channels) << entry.path();
            }
        }
    }
    EXPECT_GT(files, 0);
}

TEST(HostileImage, RandomFlipsAreRefusedOrDecodeConsistently) {
    std::mt19937 rng(2024);
    for (const Sample& s : image_samples()) {
        for (int trial = 0; trial < 300; ++trial) {
            Bytes bytes = s.bytes;
            const int flips = 1 + int(rng() % 4);
            for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] ^= std::uint8_t(1 + rng() % 255);
            const int channels = trial % 2 ? 1 : 3;
            Image image;
            const std::string message = error_of([&] { image = decode_bytes(bytes, channels); }, s.name);
            if (message.empty()) {
                EXPECT_EQ(image.channels, channels);
                EXPECT_GT(image.width, 0);
                EXPECT_GT(image.height, 0);
                EXPECT_EQ(image.pixels.size(), std::size_t(image.width) * image.height * channels);
            }
        }
    }
}

TEST(HostileImage, GarbageAfterAValidHeaderIsRefused) {
    std::mt19937 rng(31337);
    auto garbage = [&](std::size_t n) {
        Bytes g(n);
        for (auto& b : g) b = std::uint8_t(rng());
        if (n >= 2) g[n - 2] = 0;  // never a JPEG EOI at the very end
        return g;
    };
    for (const Sample& s : image_samples()) {
        if (!is_png(s.bytes) && !is_jpeg(s.bytes)) continue;  // uncompressed BMP rows are any bytes
        // The header: up to the first IDAT / the start of scan.
        const std::string marker = is_png(s.bytes) ? "IDAT" : std::string("\xFF\xDA", 2);
        const std::size_t header = synthetic::find(s.bytes, marker);
        ASSERT_NE(header, std::string::npos) << s.name;
        for (int trial = 0; trial < 50; ++trial) {
            Bytes bytes(s.bytes.begin(), s.bytes.begin() + std::ptrdiff_t(header));
            const Bytes tail = garbage(1 + rng() % 2000);
            bytes.insert(bytes.end(), tail.begin(), tail.end());
            EXPECT_NE(error_of([&] { decode_bytes(bytes); }, s.name), "") << s.name << " trial " << trial;
        }
        // Also right after the signature.
        Bytes bytes(s.bytes.begin(), s.bytes.begin() + (is_png(s.bytes) ? 8 : 3));
        const Bytes tail = garbage(500);
        bytes.insert(bytes.end(), tail.begin(), tail.end());
        EXPECT_NE(error_of([&] { decode_bytes(bytes); }, s.name), "") << s.name;
    }
}

// PIL ignores what follows the end of an image; so does onevit, and the
// pixels are those of the image.
TEST(HostileImage, GarbageAfterACompleteImageIsIgnored) {
    for (const Sample& s : image_samples()) {
        Bytes bytes = s.bytes;
        const Bytes tail(100, 0xAB);
        bytes.insert(bytes.end(), tail.begin(), tail.end());
        EXPECT_EQ(decode_bytes(bytes).pixels, decode_bytes(s.bytes).pixels) << s.name;
    }
}

TEST(HostileImage, OversizedHeadersAreRefusedBeforeAllocation) {
    // Nothing follows these headers: a decoder that allocated first would
    // need gigabytes (and the sanitizer build would abort on them).
    for (auto [w, h] : {std::pair<std::uint32_t, std::uint32_t>{100000, 100000},
                        {0x7FFFFFFF, 0x7FFFFFFF},
                        {0xFFFFFFFF, 0xFFFFFFFF},
                        {1, 0xFFFFFFFF},
                        {200000, 1000}}) {
        const Bytes png = synthetic::png_header_only(w, h);
        const std::string message = error_of([&] { decode_image_bytes(png.data(), png.size()); });
        EXPECT_NE(message, "") << w << "x" << h;
        if (w <= 0x7FFFFFFF && h <= 0x7FFFFFFF) {
            EXPECT_NE(message.find("limit"), std::string::npos) << message;
        }
    }
    const Bytes jpeg = synthetic::encode_jpeg({});
    for (auto [w, h] : {std::pair<std::uint16_t, std::uint16_t>{65500, 65500}, {60000, 20000}, {65535, 65535}}) {
        const Bytes big = synthetic::jpeg_with_size(jpeg, w, h);
        const std::string message = error_of([&] { decode_image_bytes(big.data(), big.size()); });
        EXPECT_NE(message, "") << w << "x" << h;
    }
    // Under a small budget, a modest claim is refused the same way.
    DecodeLimits small;
    small.max_pixels = 100;
    const Bytes png = synthetic::png_header_only(11, 10);
    EXPECT_NE(error_of([&] { decode_image_bytes(png.data(), png.size(), 3, small); }).find("limit"), std::string::npos);
}

TEST(HostileImage, ZeroWidthOrHeightIsRefused) {
    for (auto [w, h] : {std::pair<std::uint32_t, std::uint32_t>{0, 10}, {10, 0}, {0, 0}}) {
        const Bytes png = synthetic::png_header_only(w, h);
        EXPECT_NE(error_of([&] { decode_image_bytes(png.data(), png.size()); }).find("zero"), std::string::npos);
    }
    const Bytes jpeg = synthetic::encode_jpeg({});
    for (auto [w, h] : {std::pair<std::uint16_t, std::uint16_t>{0, 12}, {16, 0}}) {
        const Bytes bad = synthetic::jpeg_with_size(jpeg, w, h);
        EXPECT_NE(error_of([&] { decode_image_bytes(bad.data(), bad.size()); }), "");
    }
}

TEST(HostileImage, PreprocessRefusesInconsistentImagesAndRecipes) {
    Architecture arch;
    arch.channels = 3;
    arch.image_height = arch.image_width = 8;
    Preprocessing recipe;
    recipe.resize_size = 9;
    recipe.mean.assign(3, 0.5f);
    recipe.std.assign(3, 0.25f);
    auto image = [](int w, int h, int c, std::size_t n) {
        Image i;
        i.width = w;
        i.height = h;
        i.channels = c;
        i.pixels.assign(n, 7);
        return i;
    };
    for (const Image& bad : {image(0, 4, 3, 0), image(-4, -4, 3, 48), image(4, 4, 3, 47), image(4, 4, 1, 16),
                             image(0x7FFFFFFF, 0x7FFFFFFF, 3, 12), image(65536, 65536, 3, 0)})
        EXPECT_NE(error_of([&] { preprocess(bad, arch, recipe); }), "");
    // Extreme aspect ratio: the longer side would overflow an int.
    Preprocessing huge = recipe;
    huge.resize_size = 16384;
    EXPECT_NE(error_of([&] { preprocess(image(200000, 1, 3, 600000), arch, huge); }).find("too large"),
              std::string::npos);
    Preprocessing zero_std = recipe;
    zero_std.std[1] = 0.f;
    EXPECT_NE(error_of([&] { preprocess(image(4, 4, 3, 48), arch, zero_std); }), "");
}

}  // namespace
}  // namespace onevit
