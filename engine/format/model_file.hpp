// An opened, fully validated model file (weights/FORMAT.md). Opening checks the
// header, its checksum, every metadata value, and every tensor's name, shape,
// offset and size against the architecture before any weight is used.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "format/mapped_file.hpp"
#include "format/page_buffer.hpp"
#include "onevit/error.hpp"
#include "onevit/model_info.hpp"

namespace onevit {

std::int64_t element_count(const std::vector<std::int64_t>& dims);

struct TensorView {
    std::vector<std::int64_t> dims;
    const float* data = nullptr;  // 64-byte aligned: inside the mapping, or the widened copy of a bf16/int8 tensor

    std::int64_t elements() const { return element_count(dims); }
};

// How a tensor is stored (weights/FORMAT.md, "Tensor data types"); the values
// are the record's dtype field.
enum class TensorDType : std::uint32_t { f32 = 0, bf16 = 1, int8 = 2 };
const char* to_string(TensorDType dtype);

// A tensor exactly as the file stores it, for weight paths that take bf16 or
// int8 directly instead of widening them to f32.
struct StoredTensor {
    TensorDType dtype = TensorDType::f32;
    std::vector<std::int64_t> dims;
    // Row-major values, 64-byte aligned, inside the mapping: f32, bf16 (the
    // upper 16 bits of an f32) or s8.
    const void* data = nullptr;
    // int8 only: dims[0] per-row (output channel) scales, each finite and >= 0;
    // value[o][i] = s8[o][i] × scales[o]. 64-byte aligned. Null otherwise.
    const float* scales = nullptr;
    std::uint64_t nbytes = 0;  // the record's nbytes: values (and, for int8, padding and scales)

    std::int64_t elements() const { return element_count(dims); }
    const std::uint16_t* bf16() const { return static_cast<const std::uint16_t*>(data); }
    const std::int8_t* s8() const { return static_cast<const std::int8_t*>(data); }
};

// What an architecture needs the file to hold: each tensor's shape, and
// whether it may be stored as bf16/int8 (a linear layer's weight). The model
// layer's description gives it (model/model_files.hpp).
struct ExpectedTensor {
    std::vector<std::int64_t> dims;
    bool linear_weight = false;
};
using ExpectedTensors = std::map<std::string, ExpectedTensor>;
using DescribeTensors = std::function<ExpectedTensors(const Architecture&)>;

class ModelFile {
public:
    // Reads and checks the header, the metadata and the tensor table, then
    // the tensor set against expected(architecture).
    static ModelFile open(const std::string& path, const DescribeTensors& expected);

    const ModelInfo& info() const { return info_; }
    const std::string& path() const { return path_; }
    // The named tensor in f32; its shape was already checked at open. A bf16 or
    // int8 tensor is widened on its first request into memory of its own (safe
    // from many threads at once), which lives until release(name).
    const TensorView& tensor(const std::string& name) const;
    // The named tensor as stored, not converted.
    const StoredTensor& stored(const std::string& name) const;
    bool has_tensor(const std::string& name) const { return tensors_.count(name) != 0; }
    // The named tensor was copied (reordered) and is not read again: its pages
    // need not stay in memory, and its widened f32 copy, if any, is freed (a
    // later tensor(name) widens it again).
    void release(const std::string& name) const;
    // Checks the CRC-32 of the tensor data; throws onevit::Error on mismatch.
    void verify_data() const;

private:
    ModelFile(std::string path, MappedFile file);
    void read_fixed_header();
    // "<path>: truncated (N bytes, <needs>)".
    Error truncated(const std::string& needs) const;

    // The f32 copy of a bf16/int8 tensor, built on demand.
    struct Widened {
        std::mutex mutex;
        PageBuffer buffer;
        TensorView view;
    };
    struct Entry {
        StoredTensor stored;
        TensorView view;                   // f32 tensors: the data in the mapping
        std::unique_ptr<Widened> widened;  // bf16/int8 tensors
    };
    const Entry& entry(const std::string& name) const;

    std::string path_;
    MappedFile file_;
    std::uint32_t version_ = 0;
    std::uint64_t data_offset_ = 0;
    std::uint32_t data_crc_ = 0;
    ModelInfo info_;
    std::map<std::string, Entry> tensors_;
};

}  // namespace onevit
