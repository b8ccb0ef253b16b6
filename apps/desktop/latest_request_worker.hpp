// One background thread that runs a job on the latest request only: a request
// made while the job runs replaces any request still waiting (the user has
// moved on to another image), and the caller — the UI thread — never waits
// for the job.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace onevit::desktop {

class LatestRequestWorker {
public:
    // job runs on the worker thread and handles its own errors.
    explicit LatestRequestWorker(std::function<void(const std::string&)> job);
    ~LatestRequestWorker();  // finishes the running job, drops a waiting request
    LatestRequestWorker(const LatestRequestWorker&) = delete;
    LatestRequestWorker& operator=(const LatestRequestWorker&) = delete;

    void request(std::string argument);

private:
    void loop();

    std::function<void(const std::string&)> job_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::optional<std::string> waiting_;
    bool stopping_ = false;
    std::thread thread_;  // last: starts once everything above exists
};

}  // namespace onevit::desktop
