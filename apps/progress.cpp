#include "progress.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <string>

#include <unistd.h>

namespace onevit::cli {

namespace {

std::string minutes_and_seconds(double seconds) {
    const long s = static_cast<long>(seconds + 0.5);
    return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                     : fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

Progress::Progress(std::size_t total)
    : total_(total), enabled_(isatty(STDERR_FILENO) == 1), stdout_is_terminal_(isatty(STDOUT_FILENO) == 1) {}

Progress::~Progress() { clear(); }

void Progress::make_room(std::FILE* output) {
    if (output == stderr || stdout_is_terminal_) clear();
}

void Progress::clear() {
    if (!drawn_) return;
    fmt::print(stderr, "\r\033[K");  // carriage return, erase to the end of the line
    std::fflush(stderr);
    drawn_ = false;
}

void Progress::show(std::size_t done) {
    if (!enabled_) return;
    const Clock::time_point now = Clock::now();
    const bool finished = done >= total_;
    if (!finished && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? done / seconds : 0;
    std::fflush(stdout);  // what is printed before the line stays before it on a shared terminal
    const std::string line =
        finished ? fmt::format("{}/{} images  {:.1f} images/s  {}\n", done, total_, rate, minutes_and_seconds(seconds))
                 : fmt::format("{}/{} images  {:.1f} images/s  ETA {}", done, total_, rate,
                               rate > 0 ? minutes_and_seconds((total_ - done) / rate) : "?");
    fmt::print(stderr, "\r\033[K{}", line);
    std::fflush(stderr);
    drawn_ = !finished;
    last_draw_ = now;
}

}  // namespace onevit::cli
