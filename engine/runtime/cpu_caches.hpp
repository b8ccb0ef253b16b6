// The CPU's cache sizes, as the operating system reports them.
#pragma once

#include <cstddef>

namespace onevit {

// The L2 cache of one core, in bytes: sysconf, else sysfs, else 1 MiB.
std::size_t l2_cache_bytes();

}  // namespace onevit
