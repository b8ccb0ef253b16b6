// Where every admitted request's images live: a fixed number of slots of one
// image each (C x H x W floats), mapped once when the server starts, so that
// requests never take their largest buffers from the general heap, whose
// per-thread arenas would keep the high-water mark of every burst (docs/serve.md).
// Slots are handed out lowest-numbered first, so the pages touched are those of
// the most requests ever in flight at once; the first `warm` slots are touched at
// start, and those past them that a burst touched are given back when idle. When
// no slot is free the request is over capacity: 503 / UNAVAILABLE.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <queue>
#include <string>
#include <vector>

namespace onevit::serve {

class ImageSlots;

class ImagePool {
public:
    // image_bytes: one image's bytes (a multiple of 4); throws onevit::Error if
    // the mapping fails.
    ImagePool(std::size_t image_bytes, int slots, int warm);
    ~ImagePool();
    ImagePool(const ImagePool&) = delete;
    ImagePool& operator=(const ImagePool&) = delete;

    std::size_t image_bytes() const { return image_bytes_; }
    int slots() const { return slots_; }
    int warm() const { return warm_; }

    // Images (bytes, whole images) copied into slots; throws RequestError
    // (unavailable) when not enough are free.
    ImageSlots copy_of(const void* data, std::size_t bytes);
    // The refusal's message, with the pool's size.
    std::string full_message() const;
    // When no slot is in use (an idle server): gives back the pages of the slots
    // past the warm ones that a burst touched, so that resident memory returns to
    // what it was at start.
    void trim();

private:
    friend class ImageSlots;
    int take();  // -1 when none is free
    void give_back(const std::vector<int>& slots);
    char* slot(int index) const { return base_ + std::size_t(index) * image_bytes_; }

    const std::size_t image_bytes_;
    const int slots_;
    const int warm_;
    char* base_ = nullptr;
    std::mutex mutex_;
    std::priority_queue<int, std::vector<int>, std::greater<int>> free_;  // lowest first
    int highest_taken_ = -1;                                              // since the last trim
};

// The slots one request holds, in image order; given back when destroyed.
class ImageSlots {
public:
    ImageSlots() = default;
    explicit ImageSlots(ImagePool& pool) : pool_(&pool) {}
    ImageSlots(ImageSlots&& other) noexcept;
    ImageSlots& operator=(ImageSlots&& other) noexcept;
    ~ImageSlots() { clear(); }

    // One more slot at the end; false when the pool has none free.
    bool add();
    void clear();

    int count() const { return static_cast<int>(slots_.size()); }
    bool empty() const { return slots_.empty(); }
    std::size_t image_floats() const { return pool_ ? pool_->image_bytes() / sizeof(float) : 0; }
    char* bytes(int image) const { return pool_->slot(slots_[image]); }
    float* image(int image) const { return reinterpret_cast<float*>(bytes(image)); }
    // All the images as one array, when their slots are consecutive (always for
    // one image); else null, and a run gathers them.
    const float* contiguous() const;
    // Copies of the images, one after another (tests, and bytes that are not floats).
    std::vector<float> floats() const;
    std::string copy_bytes(std::size_t count) const;  // the first count bytes

private:
    ImagePool* pool_ = nullptr;
    std::vector<int> slots_;
};

}  // namespace onevit::serve
