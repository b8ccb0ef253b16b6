// The progress line of a long run, on stderr — "120/250 images  41.3 images/s  ETA 0:03"
// — redrawn in place, and only when stderr is a terminal: nothing otherwise.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>

namespace onevit::cli {

class Progress {
public:
    explicit Progress(std::size_t total);
    ~Progress();  // erases an unfinished line, so that an error message starts clean
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    // Before writing to `output`: erases the line if output goes to the same
    // terminal (stderr, or stdout when it is a terminal too). show() redraws it.
    void make_room(std::FILE* output);
    // `done` of the total are done: redraws the line (at most ten times a second),
    // and when all are done, leaves it with the overall rate and time.
    void show(std::size_t done);

private:
    using Clock = std::chrono::steady_clock;
    const std::size_t total_;
    const bool enabled_;
    const bool stdout_is_terminal_;
    const Clock::time_point start_ = Clock::now();
    Clock::time_point last_draw_{};
    bool drawn_ = false;

    void clear();
};

}  // namespace onevit::cli
