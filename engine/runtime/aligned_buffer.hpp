// A float buffer aligned to 64 bytes (a cache line, an AVX-512 register), as
// oneDNN's kernels prefer for activations.
#pragma once

#include <cstdlib>
#include <memory>
#include <new>

namespace onevit {

class AlignedBuffer {
public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(std::size_t floats) : size_(floats) {
        const std::size_t bytes = ((floats * sizeof(float) + 63) / 64) * 64;
        data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64)));
        if (!data_) throw std::bad_alloc();
    }
    float* data() const { return data_.get(); }
    std::size_t size() const { return size_; }

private:
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> data_;
    std::size_t size_ = 0;
};

}  // namespace onevit
