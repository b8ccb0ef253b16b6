// bf16 and int8 tensors (weights/FORMAT.md, "Tensor data types"): the reader
// hands out what the file stores, widens it to f32 exactly as the format
// defines the values (lazily, from many threads at once), and a model stored
// in bf16 or int8 runs at f32 close to its f32 file.
//
// The expected bytes and values come from tests/fuzz/synthetic.hpp's own
// encoder (bf16 rounding, FORMAT.md's int8 rule), not from the engine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "fuzz/synthetic.hpp"
#include "format/model_file.hpp"
#include "model/open_model_file.hpp"
#include "onevit/model.hpp"

namespace onevit {
namespace {

using synthetic::ModelBytes;

std::string write_model(const ModelBytes& m, const std::string& name) {
    const std::string path = ::testing::TempDir() + "onevit_dtypes_" +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" + name + ".ovit";
    const synthetic::Bytes bytes = m.bytes();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return path;
}

// A tiny model with every linear weight stored as `dtype`; the larger spec
// gives rows wide enough for int8's 64-byte padding to matter (dim 24 → 3·24 = 72 rows of 24).
ModelBytes model_stored_as(std::uint32_t dtype) {
    synthetic::Spec spec;
    spec.dim = 24;
    spec.heads = 2;
    spec.head_dim = 12;
    spec.mlp = 40;
    spec.depth = 2;
    ModelBytes m = synthetic::tiny_model(spec, 7);
    m.store_linear_weights(dtype);
    return m;
}

bool is_linear_weight(const synthetic::Tensor& t) {
    return t.dims.size() == 2 && t.name.size() > 7 && t.name.substr(t.name.size() - 7) == ".weight";
}

float bf16_value(std::uint16_t bits) {
    const std::uint32_t wide = std::uint32_t{bits} << 16;
    float f;
    std::memcpy(&f, &wide, 4);
    return f;
}

TEST(TensorDTypes, F32TensorsAreReadInPlace) {
    const ModelFile file = open_model_file(write_model(model_stored_as(synthetic::kF32), "f32"));
    const StoredTensor& stored = file.stored("blocks.0.mlp.fc1.weight");
    EXPECT_EQ(stored.dtype, TensorDType::f32);
    EXPECT_EQ(stored.scales, nullptr);
    EXPECT_EQ(static_cast<const void*>(file.tensor("blocks.0.mlp.fc1.weight").data), stored.data);
}

TEST(TensorDTypes, Bf16IsStoredAndWidenedAsTheFormatSays) {
    const ModelBytes m = model_stored_as(synthetic::kBF16);
    const ModelFile file = open_model_file(write_model(m, "bf16"));
    int linear = 0;
    for (const synthetic::Tensor& t : m.tensors) {
        const StoredTensor& stored = file.stored(t.name);
        if (!is_linear_weight(t)) {
            EXPECT_EQ(stored.dtype, TensorDType::f32) << t.name;
            continue;
        }
        ++linear;
        ASSERT_EQ(stored.dtype, TensorDType::bf16) << t.name;
        EXPECT_EQ(stored.nbytes, t.values.size() * 2);
        const TensorView& view = file.tensor(t.name);
        ASSERT_EQ(view.elements(), std::int64_t(t.values.size()));
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(view.data) % 64, 0u);
        for (std::size_t i = 0; i < t.values.size(); ++i) {
            const std::uint16_t expected = synthetic::bf16_bits(t.values[i]);
            ASSERT_EQ(stored.bf16()[i], expected) << t.name << "[" << i << "]";
            ASSERT_EQ(view.data[i], bf16_value(expected)) << t.name << "[" << i << "]";
            // bf16 keeps 8 significant bits: rounding moves a weight by at most 2^-8 of itself.
            ASSERT_LE(std::fabs(view.data[i] - t.values[i]), std::fabs(t.values[i]) * 0x1p-8f);
        }
    }
    EXPECT_EQ(linear, 2 * 4 + 1);  // qkv, proj, fc1, fc2 per block, head
}

TEST(TensorDTypes, Int8IsStoredAndWidenedAsTheFormatSays) {
    const ModelBytes m = model_stored_as(synthetic::kInt8);
    const ModelFile file = open_model_file(write_model(m, "int8"));
    for (const synthetic::Tensor& t : m.tensors) {
        if (!is_linear_weight(t)) continue;
        const StoredTensor& stored = file.stored(t.name);
        ASSERT_EQ(stored.dtype, TensorDType::int8) << t.name;
        std::vector<std::int8_t> q;
        std::vector<float> scales;
        synthetic::quantize_rows(t.values, t.dims[1], q, scales);
        ASSERT_NE(stored.scales, nullptr);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(stored.scales) % 64, 0u);
        EXPECT_EQ(stored.nbytes, (q.size() + 63) / 64 * 64 + 4 * scales.size());
        const TensorView& view = file.tensor(t.name);
        const std::size_t columns = t.dims[1];
        for (std::size_t r = 0; r < scales.size(); ++r) {
            ASSERT_EQ(stored.scales[r], scales[r]) << t.name << " row " << r;
            for (std::size_t c = 0; c < columns; ++c) {
                const std::size_t i = r * columns + c;
                ASSERT_EQ(stored.s8()[i], q[i]) << t.name << "[" << i << "]";
                ASSERT_EQ(view.data[i], float(q[i]) * scales[r]) << t.name << "[" << i << "]";
                // Rounding to the nearest step: at most half a step from the f32 weight.
                ASSERT_LE(std::fabs(view.data[i] - t.values[i]), scales[r] * 0.5f * (1 + 1e-5f));
            }
        }
    }
}

TEST(TensorDTypes, AllZeroRowHasScaleZero) {
    ModelBytes m = model_stored_as(synthetic::kInt8);
    synthetic::Tensor& head = *m.tensor("head.weight");
    std::fill(head.values.begin(), head.values.begin() + std::ptrdiff_t(head.dims[1]), 0.f);
    const ModelFile file = open_model_file(write_model(m, "zero_row"));
    EXPECT_EQ(file.stored("head.weight").scales[0], 0.f);
    const TensorView& view = file.tensor("head.weight");
    for (std::uint64_t c = 0; c < head.dims[1]; ++c) EXPECT_EQ(view.data[c], 0.f);
}

// Blocks are loaded in parallel: many threads asking for the same tensors at
// once all get the one widened copy; release() frees it and a later request
// widens it again, to the same values.
TEST(TensorDTypes, WideningIsSharedAcrossThreadsAndUndoneByRelease) {
    const ModelBytes m = model_stored_as(synthetic::kInt8);
    const ModelFile file = open_model_file(write_model(m, "threads"));
    const std::vector<std::string> names = {"blocks.0.attn.qkv.weight", "blocks.0.mlp.fc1.weight",
                                            "blocks.1.mlp.fc2.weight", "head.weight"};
    constexpr int kThreads = 8;
    std::vector<std::vector<const float*>> seen(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (const std::string& name : names) seen[t].push_back(file.tensor(name).data);
        });
    for (std::thread& thread : threads) thread.join();
    for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seen[t], seen[0]);

    const TensorView& before = file.tensor("blocks.0.mlp.fc1.weight");
    const std::vector<float> values(before.data, before.data + before.elements());
    file.release("blocks.0.mlp.fc1.weight");
    const TensorView& again = file.tensor("blocks.0.mlp.fc1.weight");
    EXPECT_EQ(std::vector<float>(again.data, again.data + again.elements()), values);
}

// The same weights stored three ways all run at f32; the logits move by no
// more than the weights' rounding explains. Each stored weight is off by at most
// e = 2^-8 of itself (bf16) or 1/254 of its row's largest (int8: half a step of
// max|row|/127), which moves each linear output by about e of its size, a few
// times over through the blocks. Tolerance ≈ 2.5e (bf16) and 5e (int8) of
// max(1, max|logit|); measured on this 2-block model: 0.25e-2 and 0.37e-2.
TEST(TensorDTypes, EveryStoredDTypeRunsAtF32CloseToTheF32File) {
    Options options;
    options.threads = 2;
    options.precision = Precision::f32;
    std::vector<float> input(3 * 4 * 4);
    for (std::size_t i = 0; i < input.size(); ++i) input[i] = float(i % 7) / 7.f - 0.4f;
    const Model f32 = Model::load(write_model(model_stored_as(synthetic::kF32), "run_f32"), options);
    const std::vector<float> reference = f32.run(input.data(), 1);
    float scale = 1.f;
    for (float v : reference) scale = std::max(scale, std::fabs(v));
    for (const auto& [dtype, tolerance] : {std::pair{synthetic::kBF16, 1e-2f}, std::pair{synthetic::kInt8, 2e-2f}}) {
        const Model model = Model::load(write_model(model_stored_as(dtype), "run_" + std::to_string(dtype)), options);
        const std::vector<float> logits = model.run(input.data(), 1);
        ASSERT_EQ(logits.size(), reference.size());
        float worst = 0.f;
        for (std::size_t k = 0; k < logits.size(); ++k) worst = std::max(worst, std::fabs(logits[k] - reference[k]));
        EXPECT_LE(worst, tolerance * scale) << "dtype " << dtype;
        EXPECT_GT(worst, 0.f) << "dtype " << dtype << ": the stored weights were not rounded at all";
    }
}

// Options::precision left unset runs a file at the precision it was written for:
// the same logits as asking for that precision, and what Model::precision() says.
TEST(TensorDTypes, UnsetPrecisionIsTheFilesOwn) {
    std::vector<float> input(3 * 4 * 4);
    for (std::size_t i = 0; i < input.size(); ++i) input[i] = float(i % 5) / 5.f - 0.3f;
    for (const auto& [dtype, stored] :
         {std::pair{synthetic::kF32, Precision::f32}, std::pair{synthetic::kBF16, Precision::bf16},
          std::pair{synthetic::kInt8, Precision::int8}}) {
        const std::string path = write_model(model_stored_as(dtype), "own_" + std::to_string(dtype));
        Options options;
        options.threads = 1;
        const Model unset = Model::load(path, options);
        EXPECT_EQ(unset.info().stored_precision, stored) << "dtype " << dtype;
        EXPECT_EQ(unset.precision(), stored) << "dtype " << dtype;
        options.precision = stored;
        EXPECT_EQ(unset.run(input.data(), 1), Model::load(path, options).run(input.data(), 1)) << "dtype " << dtype;
        options.precision = Precision::f32;  // an explicit precision wins
        EXPECT_EQ(Model::load(path, options).precision(), Precision::f32) << "dtype " << dtype;
    }
    ModelBytes head_only = synthetic::tiny_model(synthetic::Spec{}, 3);
    head_only.tensor("head.weight")->dtype = synthetic::kBF16;
    EXPECT_EQ(Model::load(write_model(head_only, "head_bf16")).info().stored_precision, Precision::bf16);
}

TEST(TensorDTypes, PrecisionNamesParseOneWay) {
    EXPECT_EQ(parse_precision("f32"), Precision::f32);
    EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
    EXPECT_EQ(parse_precision("int8"), Precision::int8);
    EXPECT_EQ(parse_precision("auto"), fastest_native_precision());
    for (const char* bad : {"", "f16", "INT8", "auto "}) {
        try {
            parse_precision(bad);
            ADD_FAILURE() << "'" << bad << "' parsed";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("f32, bf16, int8 or auto"), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace onevit
