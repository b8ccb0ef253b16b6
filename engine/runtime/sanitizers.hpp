// Which sanitizer this translation unit is built with, for g++ (__SANITIZE_*__)
// and clang (__has_feature) alike: ONEVIT_TSAN, ONEVIT_ASAN (cmake/sanitizers.cmake).
#pragma once

#if defined(__SANITIZE_THREAD__)
#define ONEVIT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ONEVIT_TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define ONEVIT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ONEVIT_ASAN 1
#endif
#endif

// A function TSan does not instrument (its callees still are): for code that
// must read what another thread handed over before it can announce the hand-off.
#ifdef ONEVIT_TSAN
#define ONEVIT_NO_TSAN __attribute__((no_sanitize("thread")))
#else
#define ONEVIT_NO_TSAN
#endif

// TSan cannot see oneTBB's hand-offs between threads (TBB is not instrumented):
// code that hands work to TBB announces them, release before, acquire in the task.
#ifdef ONEVIT_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#define ONEVIT_HB_RELEASE(p) __tsan_release(p)
#define ONEVIT_HB_ACQUIRE(p) __tsan_acquire(p)
#else
#define ONEVIT_HB_RELEASE(p) ((void)(p))
#define ONEVIT_HB_ACQUIRE(p) ((void)(p))
#endif
