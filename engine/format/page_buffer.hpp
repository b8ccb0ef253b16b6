// Floats in pages of their own, straight from mmap and given back to the
// kernel when freed. For short-lived large buffers (a bf16/int8 tensor widened
// to f32 for a reorder): glibc raises its mmap threshold after such a buffer is
// freed and then keeps the next ones on its heap, raising peak resident memory
// (docs/performance.md, "Loading").
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <utility>

namespace onevit {

class PageBuffer {
public:
    PageBuffer() = default;
    explicit PageBuffer(std::size_t floats) : bytes_(floats * sizeof(float)) {
        void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        data_ = static_cast<float*>(p);  // page-aligned
    }
    PageBuffer(PageBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
    PageBuffer& operator=(PageBuffer&& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(bytes_, other.bytes_);
        return *this;
    }
    PageBuffer(const PageBuffer&) = delete;
    PageBuffer& operator=(const PageBuffer&) = delete;
    ~PageBuffer() {
        if (data_) ::munmap(data_, bytes_);
    }

    float* data() const { return data_; }

private:
    float* data_ = nullptr;
    std::size_t bytes_ = 0;
};

}  // namespace onevit
