// The loader against damaged model files: every truncation and every flipped
// header byte is refused with a message, a flipped data byte is caught by the
// data checksum, and hostile values behind a valid checksum are named.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "format/model_file.hpp"
#include "model/open_model_file.hpp"
#include "onevit/error.hpp"
#include "onevit/model.hpp"

namespace onevit {
namespace {

const std::string kModel = "weights/digits_vit.ovit";  // the bundled model; tests run in the source root

std::vector<std::uint8_t> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

class DamagedFile : public ::testing::Test {
protected:
    void SetUp() override {
        original = read_all(kModel);
        ASSERT_GT(original.size(), 64u) << "cannot read " << kModel;
        std::memcpy(&data_offset, original.data() + 16, sizeof data_offset);
        // One file per test, so tests may run in parallel (ctest -j).
        path = ::testing::TempDir() + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".ovit";
    }
    void write(const std::vector<std::uint8_t>& bytes) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    }
    // The message of the error that opening `bytes` must raise.
    std::string open_error(const std::vector<std::uint8_t>& bytes) {
        write(bytes);
        try {
            open_model_file(path);
        } catch (const Error& e) {
            return e.what();
        }
        ADD_FAILURE() << "opened without error";
        return {};
    }
    // Rewrites the header checksum, so only the validation of values can object.
    static void reseal(std::vector<std::uint8_t>& bytes, std::uint64_t data_offset) {
        const std::uint32_t crc = crc32(0, bytes.data() + 16, uInt(data_offset - 16));
        std::memcpy(bytes.data() + 12, &crc, 4);
    }
    // Offset of the u32 value of a u32 metadata entry.
    std::size_t metadata_value(const std::string& key) const {
        const std::string needle = key;
        auto it = std::search(original.begin(), original.end(), needle.begin(), needle.end());
        EXPECT_NE(it, original.end()) << key;
        return std::size_t(it - original.begin()) + key.size() + 4;  // skip the type
    }

    std::vector<std::uint8_t> original;
    std::uint64_t data_offset = 0;
    std::string path;
};

TEST_F(DamagedFile, IntactFileOpensAndVerifies) {
    write(original);
    ModelFile file = open_model_file(path);
    EXPECT_GT(file.info().parameter_count, 0);
    EXPECT_NO_THROW(file.verify_data());
}

TEST_F(DamagedFile, EveryTruncationIsRefused) {
    std::vector<std::size_t> lengths = {0,
                                        1,
                                        7,
                                        8,
                                        12,
                                        31,
                                        32,
                                        33,
                                        100,
                                        data_offset - 1,
                                        data_offset,
                                        data_offset + 1,
                                        original.size() / 2,
                                        original.size() - 1};
    for (std::size_t length = 0; length < data_offset; length += 97) lengths.push_back(length);
    for (std::size_t length : lengths) {
        std::vector<std::uint8_t> cut(original.begin(), original.begin() + std::ptrdiff_t(length));
        EXPECT_FALSE(open_error(cut).empty()) << "length " << length;
    }
}

TEST_F(DamagedFile, EveryFlippedHeaderByteIsRefused) {
    write(original);
    std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
    auto put = [&](std::size_t at, std::uint8_t value) {
        file.seekp(std::streamoff(at));
        file.put(char(value));
        file.flush();
    };
    for (std::size_t at = 0; at < data_offset; ++at) {
        put(at, original[at] ^ 0x5a);
        EXPECT_THROW(open_model_file(path), Error) << "byte " << at;
        put(at, original[at]);
    }
    file.close();
}

TEST_F(DamagedFile, FlippedDataByteFailsVerification) {
    std::mt19937 rng(7);
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<std::uint8_t> bytes = original;
        const std::size_t at = data_offset + rng() % (original.size() - data_offset);
        bytes[at] ^= 0x01;
        write(bytes);
        ModelFile file = open_model_file(path);  // loading does not hash the data
        EXPECT_THROW(file.verify_data(), Error) << "byte " << at;
    }
}

TEST_F(DamagedFile, HostileValuesBehindValidChecksumAreNamed) {
    struct Case {
        const char* key;
        std::uint32_t value;
        const char* expected_in_message;
    };
    for (const Case& c :
         {Case{"arch.dim", 0, "arch.dim"}, Case{"arch.depth", 1000000, "arch.depth"},
          Case{"arch.depth", 9, "tensors: blocks."}, Case{"arch.heads", 5, "shape"},
          Case{"arch.patch_size", 1000, "multiple of patch_size"}, Case{"arch.channels", 2, "preprocess.mean"}}) {
        std::vector<std::uint8_t> bytes = original;
        std::memcpy(bytes.data() + metadata_value(c.key), &c.value, 4);
        reseal(bytes, data_offset);
        const std::string message = open_error(bytes);
        EXPECT_NE(message.find(c.expected_in_message), std::string::npos) << c.key << " → " << message;
    }
}

TEST_F(DamagedFile, ModelLoadReportsTheFile) {
    write({'n', 'o', 't', ' ', 'a', ' ', 'm', 'o', 'd', 'e', 'l'});
    try {
        Model::load(path);
        FAIL() << "loaded garbage";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    EXPECT_THROW(Model::load(::testing::TempDir() + "does-not-exist.ovit"), Error);
    EXPECT_THROW(Model::load(::testing::TempDir()), Error);  // a directory
}

}  // namespace
}  // namespace onevit
