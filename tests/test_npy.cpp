#include "npy.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "onevit/error.hpp"

namespace {

namespace fs = std::filesystem;
using onevit::npy::Array;

class NpyTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::path(::testing::TempDir()) / (std::string("onevit_npy_") + test->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    // A file of raw bytes: a version-1.0 .npy made by hand, or anything else.
    std::string write_bytes(const std::string& name, const std::string& bytes) const {
        std::ofstream(path(name), std::ios::binary) << bytes;
        return path(name);
    }

    static std::string npy_bytes(const std::string& header_dict, std::size_t data_bytes) {
        const std::string header = header_dict + "\n";
        std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
        bytes += static_cast<char>(header.size() & 0xff);
        bytes += static_cast<char>(header.size() >> 8);
        return bytes + header + std::string(data_bytes, '\0');
    }

    std::string write_npy(const std::string& header_dict, std::size_t data_bytes) const {
        return write_bytes("hand_made.npy", npy_bytes(header_dict, data_bytes));
    }

    // Expects reading to fail with a message that names the file and contains `reason`.
    static void expect_rejected(const std::string& file, const std::string& reason) {
        try {
            onevit::npy::read_float32(file);
            FAIL() << "accepted " << file;
        } catch (const onevit::Error& e) {
            const std::string message = e.what();
            EXPECT_NE(message.find(file), std::string::npos) << message;
            EXPECT_NE(message.find(reason), std::string::npos) << message;
        }
    }

    fs::path dir_;
};

TEST_F(NpyTest, RoundTripsShapeAndValues) {
    Array rank3{{2, 3, 4}, {}};
    for (int i = 0; i < 24; ++i) rank3.data.push_back(0.25f * static_cast<float>(i) - 3.f);
    for (const Array& original : {rank3, Array{{5}, {1, 2, 3, 4, 5}}, Array{{}, {42}}, Array{{0, 7}, {}}}) {
        const std::string file = path("roundtrip.npy");
        onevit::npy::write_float32(file, original);
        const Array read = onevit::npy::read_float32(file);
        EXPECT_EQ(read.shape, original.shape);
        EXPECT_EQ(read.data, original.data);
    }
}

TEST_F(NpyTest, WritesVersion1WithDataAlignedTo64) {
    for (const std::vector<std::int64_t>& shape : {std::vector<std::int64_t>{3}, {1, 10}, {2, 3, 5, 7}}) {
        std::int64_t count = 1;
        for (const std::int64_t dim : shape) count *= dim;
        const std::string file = path("aligned.npy");
        onevit::npy::write_float32(file, Array{shape, std::vector<float>(static_cast<std::size_t>(count), 1.f)});

        std::ifstream in(file, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        ASSERT_GE(bytes.size(), 10u);
        EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
        const std::size_t header_size = static_cast<unsigned char>(bytes[8]) |
                                        (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
        const std::size_t data_start = 10 + header_size;
        EXPECT_EQ(data_start % 64, 0u);
        EXPECT_EQ(bytes[data_start - 1], '\n');
        EXPECT_EQ(bytes.size(), data_start + 4 * static_cast<std::size_t>(count));
    }
}

TEST_F(NpyTest, ShapeStringIsPythonTupleSyntax) {
    EXPECT_EQ(onevit::npy::shape_string({}), "()");
    EXPECT_EQ(onevit::npy::shape_string({5}), "(5,)");
    EXPECT_EQ(onevit::npy::shape_string({2, 3}), "(2, 3)");
}

TEST_F(NpyTest, ReadsVersion2AndToleratesHeaderSpacing) {
    const std::string header = "{\"descr\":'<f4','fortran_order':False,'shape':(2,)}   \n";
    std::string bytes = std::string("\x93NUMPY\x02\x00", 8);
    bytes += static_cast<char>(header.size());
    bytes += std::string(3, '\0');
    bytes += header;
    const float values[2] = {1.5f, -2.f};
    bytes.append(reinterpret_cast<const char*>(values), sizeof(values));

    const Array read = onevit::npy::read_float32(write_bytes("v2.npy", bytes));
    EXPECT_EQ(read.shape, (std::vector<std::int64_t>{2}));
    EXPECT_EQ(read.data, (std::vector<float>{1.5f, -2.f}));
}

TEST_F(NpyTest, RejectsMissingFile) { expect_rejected(path("absent.npy"), "cannot open"); }

TEST_F(NpyTest, RejectsBadMagic) {
    expect_rejected(write_bytes("text.npy", "hello, this is not numpy"), "bad magic");
    expect_rejected(write_bytes("empty.npy", ""), "bad magic");
}

TEST_F(NpyTest, RejectsUnsupportedVersion) {
    std::string bytes = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4);
    bytes[6] = '\x04';
    expect_rejected(write_bytes("v4.npy", bytes), "version 4.0");
    bytes[6] = '\x01';
    bytes[7] = '\x01';
    expect_rejected(write_bytes("v11.npy", bytes), "version 1.1");
}

TEST_F(NpyTest, RejectsTruncatedFiles) {
    const std::string whole = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 16);
    expect_rejected(write_bytes("magic_only.npy", whole.substr(0, 7)), "truncated");
    expect_rejected(write_bytes("no_length.npy", whole.substr(0, 9)), "truncated");
    expect_rejected(write_bytes("half_header.npy", whole.substr(0, 30)), "truncated");
    expect_rejected(write_bytes("half_data.npy", whole.substr(0, whole.size() - 6)), "needs 16 bytes");
}

TEST_F(NpyTest, RejectsDataSizeMismatch) {
    expect_rejected(write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28), "needs 24 bytes");
    expect_rejected(write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20), "needs 24 bytes");
}

TEST_F(NpyTest, RejectsOtherDtypes) {
    for (const std::string descr : {"<f8", ">f4", "<i4", "|u1", "f4"}) {
        expect_rejected(write_npy("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (2,), }", 8),
                        "dtype '" + descr + "' is not supported");
    }
}

TEST_F(NpyTest, RejectsFortranOrder) {
    expect_rejected(write_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16), "Fortran-order");
}

TEST_F(NpyTest, RejectsAbsurdShapes) {
    // Each product overflows 64 bits, or its byte count does, before any allocation.
    expect_rejected(write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 0),
                    "too large");
    expect_rejected(write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2305843009213693952,), }", 0),
                    "too large");
    expect_rejected(write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0),
                    "dimension too large");
    // Fits in 64 bits but not in the file.
    expect_rejected(write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", 8),
                    "needs 4000000000000 bytes");
}

TEST_F(NpyTest, RejectsMalformedHeaders) {
    const std::string bad[] = {
        "{'descr': '<f4', 'fortran_order': False}",                                 // no shape
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",      // unknown key
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",  // repeated key
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",                      // not a bool
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",                 // negative
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}",                   // an int, not a tuple
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } trailing",
        "{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}",
        "[]",
    };
    for (const std::string& header : bad) expect_rejected(write_npy(header, 8), "malformed .npy header");
}

TEST_F(NpyTest, WriteRefusesShapeThatDoesNotMatchData) {
    EXPECT_THROW(onevit::npy::write_float32(path("bad.npy"), Array{{2, 2}, {1, 2, 3}}), onevit::Error);
}

TEST_F(NpyTest, WriteReportsUnwritablePath) {
    EXPECT_THROW(onevit::npy::write_float32(path("no/such/dir/out.npy"), Array{{1}, {1}}), onevit::Error);
}

}  // namespace
