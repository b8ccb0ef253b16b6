// Bounds-checked little-endian reads from an untrusted byte range. Every read
// either succeeds inside [begin, end) or throws onevit::Error naming the field.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "onevit/error.hpp"

namespace onevit {

class ByteReader {
public:
    ByteReader(const std::uint8_t* begin, std::size_t size, std::string context)
        : begin_(begin), size_(size), context_(std::move(context)) {}

    std::size_t position() const { return pos_; }
    std::size_t remaining() const { return size_ - pos_; }

    std::uint32_t u32(const char* field) { return little_endian<std::uint32_t>(field); }
    std::uint64_t u64(const char* field) { return little_endian<std::uint64_t>(field); }
    float f32(const char* field) {
        const std::uint32_t bits = u32(field);
        float value;
        std::memcpy(&value, &bits, sizeof value);
        return value;
    }
    // A u32 length followed by that many bytes, at most max_length.
    std::string string(const char* field, std::uint32_t max_length) {
        const std::uint32_t length = u32(field);
        if (length > max_length)
            fail(std::string(field) + " length " + std::to_string(length) + " exceeds " + std::to_string(max_length));
        need(length, field);
        std::string s(reinterpret_cast<const char*>(begin_ + pos_), length);
        pos_ += length;
        return s;
    }

    [[noreturn]] void fail(const std::string& message) const {
        throw Error(context_ + ": " + message + " (at byte " + std::to_string(pos_) + ")");
    }

private:
    void need(std::size_t bytes, const char* field) const {
        if (bytes > remaining()) fail(std::string("truncated while reading ") + field);
    }
    template <class T>
    T little_endian(const char* field) {
        need(sizeof(T), field);
        T value = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(begin_[pos_ + i]) << (8 * i);
        pos_ += sizeof(T);
        return value;
    }

    const std::uint8_t* begin_;
    std::size_t size_;
    std::size_t pos_ = 0;
    std::string context_;
};

}  // namespace onevit
