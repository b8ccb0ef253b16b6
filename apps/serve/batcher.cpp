#include "batcher.hpp"

#include <malloc.h>

#include <cstring>
#include <exception>
#include <optional>

#include "metrics.hpp"

namespace onevit::serve {

Batcher::Batcher(const Model& model, int max_batch, std::chrono::microseconds max_delay, int max_queued_images,
                 Metrics& metrics, std::function<void()> when_idle)
    : model_(model),
      max_batch_(max_batch),
      max_delay_(max_delay),
      max_queued_images_(max_queued_images),
      image_floats_(std::size_t(model.info().arch.channels) * model.info().arch.image_height *
                    model.info().arch.image_width),
      outputs_per_image_(std::size_t(model.info().arch.outputs())),
      metrics_(metrics),
      when_idle_(std::move(when_idle)) {
    // One worker per stream, each with at most one batch in flight: Model::submit
    // sends each to the least busy stream, so every stream has one to run.
    // Each worker's gather buffer (a batch of several requests, gathered into one
    // input) is sized and touched here, so that it is part of the memory the server has
    // when it says ready.
    for (int i = 0; i < model.streams(); ++i) {
        std::vector<float> buffer(std::size_t(max_batch_) * image_floats_);
        workers_.emplace_back([this, buffer = std::move(buffer)]() mutable { work(buffer); });
    }
}

Batcher::~Batcher() { stop(); }

bool Batcher::reserve(int images) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_ || queued_images_ + reserved_images_ + images > max_queued_images_) return false;
    reserved_images_ += images;
    ++reserved_requests_;
    report_queue();
    return true;
}

void Batcher::release(int images) {
    std::lock_guard<std::mutex> lock(mutex_);
    reserved_images_ -= images;
    --reserved_requests_;
    report_queue();
    changed_.notify_all();  // stop() may be waiting for the reservations to settle
}

void Batcher::submit(std::unique_ptr<BatchJob> job, bool may_run_here) {
    {
        std::unique_lock<std::mutex> lock(mutex_);
        job->queued_at = BatchJob::Clock::now();
        reserved_images_ -= job->images;
        --reserved_requests_;
        if (may_run_here && idle() && run_here(job, lock)) return;
        if (idle()) start_now(*job);
        if (!job->started.valid()) queued_images_ += job->images;
        queue_.push_back(std::move(job));
        report_queue();
    }
    changed_.notify_all();  // idle workers, and one waiting out max_delay for a fuller batch
}

bool Batcher::idle() const { return running_ == 0 && queue_.empty() && !stopping_; }

bool Batcher::run_here(std::unique_ptr<BatchJob>& job, std::unique_lock<std::mutex>& lock) {
    // Nothing runs and nothing waits, and this thread would only post the job: it runs
    // the model itself (Model::run_here_if_idle) and answers, so neither a stream's
    // thread nor a batcher worker has to wake before or after the run.
    const float* input = job->pixels.contiguous();
    if (!input) return false;
    ++running_;
    report_queue();
    lock.unlock();
    const auto computing = BatchJob::Clock::now();
    std::optional<std::vector<float>> outputs;
    std::string error;
    try {
        outputs = model_.run_here_if_idle(input, job->images);
    } catch (const std::exception& e) {
        error = std::string("inference failed: ") + e.what();
    }
    const bool ran = outputs || !error.empty();
    if (ran) {
        metrics_.observe_queue_time(0);
        std::vector<std::unique_ptr<BatchJob>> batch;
        batch.push_back(std::move(job));
        answer(batch, batch.front()->images, computing, outputs ? std::move(*outputs) : std::vector<float>(), error);
    }
    lock.lock();
    --running_;
    // The trim is a worker's (went_idle); requests that queued meanwhile, and
    // stop(), wait for this run's end.
    if (ran && running_ == 0 && queue_.empty()) went_idle();
    if (!queue_.empty() || closed_) changed_.notify_all();
    return ran;  // not: every stream was busy (a batch that has just ended); submit() queues the job
}

void Batcher::start_now(BatchJob& job) {
    // Nothing runs and nothing waits: there is no batch to gather, so the model
    // starts here instead of after a worker has woken (that wake then overlaps the run).
    // Images in scattered slots need the worker's gather buffer.
    const float* input = job.pixels.contiguous();
    if (!input) return;
    try {
        job.started = model_.submit(input, job.images);
        ++running_;
    } catch (const std::exception&) {
        // Refused before it ran: the worker runs it as any other job, and reports the error.
    }
}

void Batcher::report_queue() {
    metrics_.set_queued(static_cast<int>(queue_.size()) + reserved_requests_, queued_images_ + reserved_images_);
}

void Batcher::stop() {
    {
        std::unique_lock<std::mutex> lock(mutex_);
        closed_ = true;
        // A job that run_here() runs holds no reservation: its run is waited for too.
        changed_.wait(lock, [this] { return reserved_requests_ == 0 && running_ == 0; });
        stopping_ = true;
    }
    changed_.notify_all();
    for (std::thread& worker : workers_) worker.join();
    workers_.clear();
}

void Batcher::work(std::vector<float>& buffer) {
    std::vector<std::unique_ptr<BatchJob>> batch;
    std::unique_lock<std::mutex> lock(mutex_);
    const auto has_work = [this] { return stopping_ || !queue_.empty(); };
    for (;;) {
        // Idle, a worker wakes when a trim would be due, and while runs go on at most
        // once a trim period; not after every run.
        if (trim_pending_) {
            const auto now = BatchJob::Clock::now(), due = idle_since_ + kTrimAfterIdle;
            changed_.wait_until(lock, due > now ? due : now + kTrimAfterIdle, has_work);
        } else {
            changed_.wait(lock, [&] { return has_work() || trim_pending_; });
        }
        if (queue_.empty()) {
            if (stopping_) return;  // every job has run
            trim_if_due(lock);
            continue;
        }
        // While another batch runs, wait for a full batch, or until the oldest request has waited max_delay.
        while (!stopping_ && running_ > 0 && !queue_.empty() && !queue_.front()->started.valid() &&
               queued_images_ < max_batch_) {
            const auto deadline = queue_.front()->queued_at + max_delay_;
            if (BatchJob::Clock::now() >= deadline) break;
            changed_.wait_until(lock, deadline);
        }
        if (queue_.empty()) continue;  // another worker took them
        // A job start_now() started runs alone, and is counted in running_ already.
        const bool started = queue_.front()->started.valid();
        int images = 0;
        do {
            images += queue_.front()->images;
            batch.push_back(std::move(queue_.front()));
            queue_.pop_front();
        } while (!started && !queue_.empty() && !queue_.front()->started.valid() &&
                 images + queue_.front()->images <= max_batch_);
        if (!started) {
            queued_images_ -= images;
            ++running_;
        }
        report_queue();
        lock.unlock();
        run(batch, images, buffer);
        batch.clear();
        lock.lock();
        finished();
    }
}

void Batcher::finished() {
    --running_;
    changed_.notify_all();  // a worker waiting out max_delay behind this batch may start now
    if (running_ == 0 && queue_.empty()) went_idle();
}

void Batcher::went_idle() {
    idle_since_ = BatchJob::Clock::now();
    if (trim_pending_) return;  // a worker's wait already ends when it is due
    trim_pending_ = true;
    changed_.notify_all();  // workers waiting with no deadline take one
}

void Batcher::trim_if_due(std::unique_lock<std::mutex>& lock) {
    if (!trim_pending_ || running_ > 0 || !queue_.empty()) return;
    if (BatchJob::Clock::now() - idle_since_ < kTrimAfterIdle) return;
    trim_pending_ = false;
    // glibc keeps what a burst of requests freed in each thread's heap, so resident
    // memory would climb to the largest burst seen; give it back while nothing runs.
    lock.unlock();
    malloc_trim(0);
    if (when_idle_) when_idle_();
    lock.lock();
}

void Batcher::run(std::vector<std::unique_ptr<BatchJob>>& batch, int images, std::vector<float>& buffer) {
    const bool running = batch.front()->started.valid();
    const auto started = running ? batch.front()->queued_at : BatchJob::Clock::now();
    for (const auto& job : batch)
        metrics_.observe_queue_time(std::chrono::duration<double>(started - job->queued_at).count());
    const float* input = batch.size() == 1 ? batch.front()->pixels.contiguous() : nullptr;
    if (!input) {
        buffer.resize(std::size_t(images) * image_floats_);
        std::size_t at = 0;
        for (const auto& job : batch)
            for (int i = 0; i < job->pixels.count(); ++i, at += image_floats_)
                std::memcpy(buffer.data() + at, job->pixels.image(i), image_floats_ * sizeof(float));
        input = buffer.data();
    }
    std::vector<float> outputs;
    std::string error;
    const auto computing = running ? started : BatchJob::Clock::now();
    try {
        outputs = running ? batch.front()->started.get() : model_.run(input, images);
    } catch (const std::exception& e) {
        error = std::string("inference failed: ") + e.what();
    }
    answer(batch, images, computing, std::move(outputs), error);
}

void Batcher::answer(std::vector<std::unique_ptr<BatchJob>>& batch, int images, BatchJob::Clock::time_point computing,
                     std::vector<float> outputs, const std::string& error) {
    metrics_.observe_batch(images, std::chrono::duration<double>(BatchJob::Clock::now() - computing).count());
    // The slots go back before any answer does: a client's next request never
    // finds its previous one's still held, so slots in use stay within the requests in flight.
    for (const auto& job : batch) job->pixels.clear();
    std::size_t row = 0;
    for (const auto& job : batch) {
        const std::size_t count = std::size_t(job->images) * outputs_per_image_;
        std::vector<float> mine;
        if (error.empty()) mine.assign(outputs.begin() + row, outputs.begin() + row + count);
        row += count;
        try {
            job->done(std::move(mine), error);
        } catch (const std::exception&) {
            // A transport that cannot answer (out of memory) must not take the worker down with it.
        }
    }
}

}  // namespace onevit::serve
