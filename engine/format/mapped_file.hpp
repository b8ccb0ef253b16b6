// A read-only memory mapping of a whole file, unmapped on destruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace onevit {

class MappedFile {
public:
    explicit MappedFile(const std::string& path);  // throws onevit::Error
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&&) = delete;
    MappedFile(const MappedFile&) = delete;
    ~MappedFile();

    const std::uint8_t* data() const { return data_; }
    std::size_t size() const { return size_; }

    // Gives back the memory of the whole pages inside [begin, begin + bytes),
    // for data that was copied elsewhere and will not be read here again (it
    // would still read correctly: the pages come back from the file).
    void release(const void* begin, std::size_t bytes) const;

private:
    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace onevit
