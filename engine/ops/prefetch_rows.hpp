// Rows far apart (a head's rows of qkv lie 3·inner apart, a page or less) are
// asked for ahead by hand: the hardware prefetchers stop at each page.
#pragma once

#include <cstddef>
#include <cstdint>

namespace onevit {

constexpr int kPrefetchRowsAhead = 8;

// Prefetches the `bytes` of the row kPrefetchRowsAhead rows after `row`, rows
// `stride` bytes apart.
inline void prefetch_row_ahead(const void* row, std::int64_t stride, std::size_t bytes) {
    const char* ahead = static_cast<const char*>(row) + kPrefetchRowsAhead * stride;
    for (std::size_t at = 0; at < bytes; at += 64) __builtin_prefetch(ahead + at);
}

}  // namespace onevit
