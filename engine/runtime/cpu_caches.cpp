#include "runtime/cpu_caches.hpp"

#include <unistd.h>

#include <fstream>
#include <string>

namespace onevit {

namespace {

// sysfs writes sizes like "1024K".
std::size_t sysfs_l2_bytes() {
    for (int index = 0; index < 8; ++index) {
        const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
        std::ifstream level(dir + "level"), size(dir + "size"), type(dir + "type");
        int l = 0;
        std::string s, t;
        if (!(level >> l) || !(size >> s) || !(type >> t)) continue;
        if (l != 2 || t == "Instruction" || s.empty()) continue;
        std::size_t bytes = std::stoul(s);
        if (s.back() == 'K') bytes <<= 10;
        if (s.back() == 'M') bytes <<= 20;
        return bytes;
    }
    return 0;
}

std::size_t detect_l2_bytes() {
    const long reported = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (reported > 0) return static_cast<std::size_t>(reported);
    try {
        if (const std::size_t bytes = sysfs_l2_bytes()) return bytes;
    } catch (...) {  // an unreadable number: the default below
    }
    return std::size_t(1) << 20;
}

}  // namespace

std::size_t l2_cache_bytes() {
    static const std::size_t bytes = detect_l2_bytes();
    return bytes;
}

}  // namespace onevit
