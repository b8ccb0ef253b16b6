// Dynamic batching over the model's streams: requests queue; one worker per
// stream takes the oldest as one batch of up to max_batch images. While another
// batch is running, a worker waits for the queue to hold max_batch images or
// for its oldest request to have waited max_delay (0: it never waits, so under
// load a batch is what queued while the streams were busy); when no batch is
// running, nothing else is being served and waiting could only add latency, so
// it starts at once: on the submitting thread itself, if that may block (no
// thread to wake but the arena's), else posted from it. A worker runs the batch
// (or waits for the one started) and hands each request its rows.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "image_pool.hpp"
#include "onevit/model.hpp"

namespace onevit::serve {

class Metrics;

struct BatchJob {
    using Clock = std::chrono::steady_clock;
    int images = 0;
    ImageSlots pixels;  // `images` images of C x H x W
    // On a batcher thread: the job's outputs (images x outputs floats), or error non-empty.
    std::function<void(std::vector<float> outputs, const std::string& error)> done;
    Clock::time_point queued_at{};
    std::future<std::vector<float>> started;  // set when an idle batcher started its run at once
};

class Batcher {
public:
    // when_idle, if given, runs with the idle trim (the image pool's give-back).
    Batcher(const Model& model, int max_batch, std::chrono::microseconds max_delay, int max_queued_images,
            Metrics& metrics, std::function<void()> when_idle = nullptr);
    ~Batcher();  // stop()
    Batcher(const Batcher&) = delete;
    Batcher& operator=(const Batcher&) = delete;

    // Room for `images` more in the queue (--max-queue), held until submit() or
    // release(); false when the queue is full or the batcher is stopping.
    bool reserve(int images);
    void release(int images);
    // Queues a job whose images were reserved. may_run_here: the caller's thread
    // may run the job itself, and answer it, when the batcher is idle (it blocks for
    // the run: HTTP's I/O threads, where another keeps serving, and the decoders).
    void submit(std::unique_ptr<BatchJob> job, bool may_run_here = false);
    // Refuses new reservations, waits for the outstanding ones to be submitted or
    // released, runs every queued job, then stops the workers.
    void stop();

private:
    void work(std::vector<float>& buffer);  // buffer: max_batch images, to gather a batch in
    void report_queue();                    // to the metrics; under mutex_
    bool idle() const;                      // nothing runs, nothing waits; under mutex_
    bool run_here(std::unique_ptr<BatchJob>& job, std::unique_lock<std::mutex>& lock);  // under mutex_
    void start_now(BatchJob& job);                                                      // under mutex_
    void finished();  // a batch's rows handed back; under mutex_
    // Returns the heap's free memory to the system once the batcher has been idle
    // for kTrimAfterIdle since its last run, if any ran since the last trim; under
    // mutex_ (released meanwhile).
    void trim_if_due(std::unique_lock<std::mutex>& lock);
    // A trim while requests keep coming would run beside the next one, and its pages
    // be faulted in again (docs/serve.md): only after a second without requests.
    static constexpr std::chrono::seconds kTrimAfterIdle{1};
    // The batcher has gone idle (the last run ended): a trim is due kTrimAfterIdle on;
    // under mutex_.
    void went_idle();
    void run(std::vector<std::unique_ptr<BatchJob>>& batch, int images, std::vector<float>& buffer);
    // The batch's run has ended (computing: when it started): metrics, slots back, each its rows.
    void answer(std::vector<std::unique_ptr<BatchJob>>& batch, int images, BatchJob::Clock::time_point computing,
                std::vector<float> outputs, const std::string& error);

    const Model& model_;
    const int max_batch_;
    const std::chrono::microseconds max_delay_;
    const int max_queued_images_;
    const std::size_t image_floats_;
    const std::size_t outputs_per_image_;
    Metrics& metrics_;
    const std::function<void()> when_idle_;

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::unique_ptr<BatchJob>> queue_;
    int queued_images_ = 0;    // in queue_
    int reserved_images_ = 0;  // reserved, not yet submitted (images being decoded)
    int reserved_requests_ = 0;
    int running_ = 0;                           // batches started or taken, whose rows are not yet handed back
    bool closed_ = false;                       // no new reservations
    bool stopping_ = false;                     // workers end once the queue is empty
    bool trim_pending_ = false;                 // a run has ended since the last trim
    BatchJob::Clock::time_point idle_since_{};  // when the last run ended
    std::vector<std::thread> workers_;
};

}  // namespace onevit::serve
