#include "log.hpp"

#include <cstdio>
#include <mutex>

namespace onevit::serve {

void log_line(const std::string& message) {
    // Messages quote what clients sent (paths, names): no control character may
    // break the line, and no client may fill the log with one request.
    constexpr std::size_t kMaxLength = 400;
    std::string line = message.substr(0, kMaxLength);
    for (char& c : line)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    if (message.size() > kMaxLength) line += "...";
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    std::fprintf(stderr, "onevit serve: %s\n", line.c_str());
}

}  // namespace onevit::serve
