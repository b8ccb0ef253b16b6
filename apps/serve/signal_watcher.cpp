#include "signal_watcher.hpp"

#include <pthread.h>

#include <csignal>
#include <cstdlib>

#include "log.hpp"

namespace onevit::serve {

namespace {

sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

}  // namespace

SignalWatcher::SignalWatcher() {
    const sigset_t set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);  // a client gone mid-response is an error code, not the end of the server
    thread_ = std::thread([this] { watch(); });
}

SignalWatcher::~SignalWatcher() {
    done_ = true;
    pthread_kill(thread_.native_handle(), SIGTERM);  // wakes sigwait, which sees done_
    thread_.join();
}

void SignalWatcher::watch() {
    const sigset_t set = stop_signals();
    for (;;) {
        int signal = 0;
        if (sigwait(&set, &signal) != 0) continue;
        if (done_) return;
        if (stop_requested_.exchange(true)) {
            log_line("second signal: exiting now, without answering the requests in progress");
            std::_Exit(1);
        }
        log_line(signal == SIGTERM ? "SIGTERM: stopping" : "SIGINT: stopping");
        std::lock_guard<std::mutex> lock(mutex_);
        signalled_.notify_all();
    }
}

void SignalWatcher::wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    signalled_.wait(lock, [this] { return stop_requested_.load(); });
}

}  // namespace onevit::serve
