// This thread's CPU time: what emulated plans and one-core measurements count,
// so that other processes on the machine change them less than wall time.
#pragma once

#include <time.h>

namespace onevit {

inline double thread_cpu_ms() {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return double(now.tv_sec) * 1e3 + double(now.tv_nsec) * 1e-6;
}

}  // namespace onevit
