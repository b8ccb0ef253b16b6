// An opened, fully validated model file (weights/FORMAT.md). Opening checks the
// header, its checksum, every metadata value, and every tensor's name, shape,
// offset and size against the architecture before any weight is used.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mapped_file.hpp"
#include "onevit/model_info.hpp"

namespace onevit {

struct TensorView {
    std::vector<std::int64_t> dims;
    const float* data = nullptr;  // 64-byte aligned, inside the mapping

    std::int64_t elements() const;
};

class ModelFile {
public:
    static ModelFile open(const std::string& path);

    const ModelInfo& info() const { return info_; }
    const std::string& path() const { return path_; }
    // The named tensor; its shape was already checked at open.
    const TensorView& tensor(const std::string& name) const;
    bool has_tensor(const std::string& name) const { return tensors_.count(name) != 0; }
    // The named tensor was copied (reordered) and is not read from the file
    // again: its pages need not stay in memory.
    void release(const std::string& name) const;
    // Checks the CRC-32 of the tensor data; throws onevit::Error on mismatch.
    void verify_data() const;

private:
    ModelFile(std::string path, MappedFile file);

    std::string path_;
    MappedFile file_;
    std::uint64_t data_offset_ = 0;
    std::uint32_t data_crc_ = 0;
    ModelInfo info_;
    std::map<std::string, TensorView> tensors_;
};

}  // namespace onevit
