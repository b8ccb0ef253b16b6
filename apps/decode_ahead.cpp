#include "decode_ahead.hpp"

#include <algorithm>

#include <oneapi/tbb/info.h>

#include "onevit/error.hpp"
#include "image_files.hpp"
#include "onevit/image.hpp"
#include "runtime/sanitizers.hpp"

namespace onevit::cli {

DecodeAhead::DecodeAhead(const std::vector<std::string>& paths, const ModelInfo& info, std::size_t lookahead)
    : paths_(paths),
      info_(info),
      lookahead_(std::max<std::size_t>(lookahead, 1)),
      done_(paths.size()),
      claimed_(paths.size()) {
    // Workers only (no slot for a master), as many as TBB has: asking for more
    // would print TBB's warning that the request is ignored.
    const int workers = tbb::info::default_concurrency() - 1;
    if (workers > 0) arena_.emplace(workers, /*reserved_for_masters=*/0);
}

DecodeAhead::~DecodeAhead() {
    std::unique_lock<std::mutex> lock(mutex_);
    finished_.wait(lock, [this] { return running_ == 0; });
}

DecodeAhead::Input DecodeAhead::take(std::size_t i) {
    std::unique_lock<std::mutex> lock(mutex_);
    const std::size_t end = std::min(paths_.size(), i + lookahead_ + 1);
    for (; arena_ && started_ < end; ++started_) {
        ONEVIT_HB_RELEASE(this);  // for TSan: the hand-off through TBB's queue
        arena_->enqueue([this, image = started_]() ONEVIT_NO_TSAN { decode_ahead(image); });
        ++running_;  // after: if enqueue throws, no decode is under way (the task's own count needs the lock)
    }
    // Rather than sleep until image i is ready, decode what no worker has
    // claimed yet, image i first: when decoding is the slower stage, this
    // thread is one more decoder (and with one core, the only one).
    while (!done_[i]) {
        std::size_t unclaimed = i;
        while (unclaimed < end && claimed_[unclaimed]) ++unclaimed;
        if (unclaimed == end) {
            finished_.wait(lock);
            continue;
        }
        claimed_[unclaimed] = true;
        lock.unlock();
        Input input = decode(unclaimed);
        lock.lock();
        done_[unclaimed] = std::move(input);
    }
    Input input = std::move(*done_[i]);
    done_[i].reset();
    lock.unlock();
    if (input.unexpected) std::rethrow_exception(input.unexpected);
    return input;
}

// Nothing escapes: on a TBB worker an exception would terminate the program.
// Every failure is in the Input, for take().
DecodeAhead::Input DecodeAhead::decode(std::size_t i) const {
    Input input;
    try {
        try {
            input.chw = preprocess(decode_input(paths_[i], info_.arch.channels), info_.arch, info_.preprocess);
        } catch (const Error& e) {
            input.error = e.what();
        }
    } catch (...) {
        input.unexpected = std::current_exception();
    }
    return input;
}

// On a TBB worker: decodes image i unless take() has claimed it.
void DecodeAhead::decode_ahead(std::size_t i) {
    ONEVIT_HB_ACQUIRE(this);
    std::unique_lock<std::mutex> lock(mutex_);
    if (!claimed_[i]) {
        claimed_[i] = true;
        lock.unlock();
        Input input = decode(i);
        lock.lock();
        done_[i] = std::move(input);
    }
    --running_;
    finished_.notify_all();
}

}  // namespace onevit::cli
