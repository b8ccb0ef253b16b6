// onevit serve's SignalWatcher: SIGTERM/SIGINT reach its thread alone, a second
// one exits at once, and it ends without a signal. Each test runs in a process of
// its own (ctest), since the watcher blocks the stop signals in the calling thread.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <thread>

#include "signal_watcher.hpp"

namespace onevit::serve {
namespace {

// Runs step, failing the whole process if it has not returned within 10 s (a
// watcher that never wakes would otherwise hang the test until ctest's timeout).
template <class Step>
void within_10_s(const char* what, Step step) {
    std::promise<void> ended;
    std::thread watchdog([what, done = ended.get_future()] {
        if (done.wait_for(std::chrono::seconds(10)) == std::future_status::ready) return;
        std::fprintf(stderr, "still waiting after 10 s: %s\n", what);
        std::_Exit(2);
    });
    step();
    ended.set_value();
    watchdog.join();
}

TEST(SignalWatcherTest, EndsWithoutASignal) {
    auto watcher = std::make_unique<SignalWatcher>();
    EXPECT_FALSE(watcher->stop_requested());
    within_10_s("the watcher's destructor, no signal sent", [&] { watcher.reset(); });
}

TEST(SignalWatcherTest, SigtermRequestsTheStop) {
    SignalWatcher watcher;
    ASSERT_EQ(kill(getpid(), SIGTERM), 0);  // to the process: only the watcher's thread takes it
    within_10_s("wait() after SIGTERM", [&] { watcher.wait(); });
    EXPECT_TRUE(watcher.stop_requested());
}

TEST(SignalWatcherTest, ASecondSignalExitsAtOnce) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            SignalWatcher watcher;
            kill(getpid(), SIGINT);
            within_10_s("wait() after SIGINT", [&] { watcher.wait(); });
            kill(getpid(), SIGTERM);
            within_10_s("the exit after a second signal",
                        [] { std::this_thread::sleep_for(std::chrono::seconds(30)); });
        },
        testing::ExitedWithCode(1), "second signal");
}

}  // namespace
}  // namespace onevit::serve
