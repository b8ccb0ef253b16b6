// Decoding and preprocessing images on oneTBB's worker threads, ahead of the
// model, so that `classify` keeps the cores busy: while the model runs one
// batch, the workers it leaves idle decode the next.
//
// The decodes run as tasks enqueued in an arena of their own that reserves no
// slot for a master thread: only TBB's workers (cores - 1 of them) run them, the
// same pool the model's arena draws its workers from. oneTBB's market shares the
// workers between the two arenas by their demand, so decoding and the model
// together never run more threads than there are cores (2 or 64), and whatever
// one side leaves idle the other takes. The thread that calls take() decodes
// too while it waits (with one core, TBB has no worker: it is the only decoder).
#pragma once

#include <oneapi/tbb/task_arena.h>

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "onevit/model_info.hpp"

namespace onevit::cli {

class DecodeAhead {
public:
    // One image ready for Model::run (C × H × W floats), or why it is not.
    struct Input {
        std::vector<float> chw;
        std::string error;              // onevit::Error's message: the image cannot be used
        std::exception_ptr unexpected;  // anything else (out of memory): rethrown by take()
    };

    // Decodes paths[i] as `info` says, at most `lookahead` images past the one last taken.
    DecodeAhead(const std::vector<std::string>& paths, const ModelInfo& info, std::size_t lookahead);
    ~DecodeAhead();  // waits for the decodes under way: they use this object
    DecodeAhead(const DecodeAhead&) = delete;
    DecodeAhead& operator=(const DecodeAhead&) = delete;

    // Image i's input, waiting for its decode if need be. Call with i = 0, 1, 2, ...
    Input take(std::size_t i);

private:
    Input decode(std::size_t i) const;  // never throws: failures are in the Input
    void decode_ahead(std::size_t i);

    const std::vector<std::string>& paths_;
    const ModelInfo& info_;
    const std::size_t lookahead_;
    std::optional<tbb::task_arena> arena_;  // none with one core

    std::mutex mutex_;
    std::condition_variable finished_;
    std::vector<std::optional<Input>> done_;  // by image; emptied by take()
    std::vector<bool> claimed_;               // by image: a thread has begun decoding it
    std::size_t started_ = 0;
    int running_ = 0;
};

}  // namespace onevit::cli
