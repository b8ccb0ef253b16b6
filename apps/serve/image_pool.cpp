#include "image_pool.hpp"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "onevit/error.hpp"
#include "request_error.hpp"

namespace onevit::serve {

ImagePool::ImagePool(std::size_t image_bytes, int slots, int warm)
    : image_bytes_(image_bytes), slots_(slots), warm_(std::min(warm, slots)) {
    if (image_bytes == 0 || image_bytes % sizeof(float) || slots < 1)
        throw Error(fmt::format("image pool: {} slots of {} bytes", slots, image_bytes));
    const std::size_t bytes = std::size_t(slots) * image_bytes;
    // Its own mapping: pages are touched by use (lowest slots first) and stay, outside malloc's arenas.
    void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        throw Error(
            fmt::format("cannot map {} MiB for {} request images: {}", bytes >> 20, slots, std::strerror(errno)));
    base_ = static_cast<char*>(base);
    std::memset(base_, 0, std::size_t(warm_) * image_bytes);  // resident from the start
    for (int i = 0; i < slots; ++i) free_.push(i);
}

ImagePool::~ImagePool() { ::munmap(base_, std::size_t(slots_) * image_bytes_); }

int ImagePool::take() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty()) return -1;
    const int slot = free_.top();
    free_.pop();
    highest_taken_ = std::max(highest_taken_, slot);
    return slot;
}

void ImagePool::give_back(const std::vector<int>& slots) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int slot : slots) free_.push(slot);
}

void ImagePool::trim() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (int(free_.size()) != slots_ || highest_taken_ < warm_) return;
    // Whole pages only: the one a warm slot shares stays.
    const std::uintptr_t page = std::uintptr_t(::sysconf(_SC_PAGESIZE));
    const std::uintptr_t from = (std::uintptr_t(slot(warm_)) + page - 1) / page * page;
    const std::uintptr_t to = std::uintptr_t(slot(highest_taken_ + 1)) / page * page;
    if (to > from) ::madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
    highest_taken_ = warm_ - 1;
}

std::string ImagePool::full_message() const {
    return fmt::format("the server is busy: all {} image slots for requests are in use (--max-queue)", slots_);
}

ImageSlots ImagePool::copy_of(const void* data, std::size_t bytes) {
    ImageSlots slots(*this);
    for (std::size_t at = 0; at < bytes; at += image_bytes_) {
        if (!slots.add()) throw RequestError(Status::unavailable, full_message());
        std::memcpy(slots.bytes(slots.count() - 1), static_cast<const char*>(data) + at,
                    std::min(image_bytes_, bytes - at));
    }
    return slots;
}

ImageSlots::ImageSlots(ImageSlots&& other) noexcept : pool_(other.pool_), slots_(std::move(other.slots_)) {
    other.slots_.clear();
}

ImageSlots& ImageSlots::operator=(ImageSlots&& other) noexcept {
    if (this != &other) {
        clear();
        pool_ = other.pool_;
        slots_ = std::move(other.slots_);
        other.slots_.clear();
    }
    return *this;
}

bool ImageSlots::add() {
    const int slot = pool_ ? pool_->take() : -1;
    if (slot < 0) return false;
    slots_.push_back(slot);
    return true;
}

void ImageSlots::clear() {
    if (slots_.empty()) return;
    pool_->give_back(slots_);
    slots_.clear();
}

const float* ImageSlots::contiguous() const {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = 1; i < slots_.size(); ++i)
        if (slots_[i] != slots_[0] + int(i)) return nullptr;
    return image(0);
}

std::vector<float> ImageSlots::floats() const {
    std::vector<float> out(slots_.size() * image_floats());
    for (int i = 0; i < count(); ++i) std::memcpy(out.data() + i * image_floats(), bytes(i), pool_->image_bytes());
    return out;
}

std::string ImageSlots::copy_bytes(std::size_t count) const {
    std::string out;
    out.reserve(count);
    for (int i = 0; i < this->count() && out.size() < count; ++i)
        out.append(bytes(i), std::min(pool_->image_bytes(), count - out.size()));
    return out;
}

}  // namespace onevit::serve
