// What both transports call to run a checked request: admission against the
// queue limit (over it: refused at once, never queued without bound), image
// decoding and preprocessing on a pool of its own (so the transports' threads
// only move bytes), then the dynamic batcher. It owns the image slots every
// request's pixels live in: the queue's images, the running batches' and as many
// again arriving (image_pool.hpp); the slots for the running and arriving ones are
// touched before ready.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "batcher.hpp"
#include "image_pool.hpp"
#include "inference_request.hpp"
#include "model_spec.hpp"
#include "onevit/model.hpp"
#include "request_error.hpp"

namespace onevit::serve {

class Metrics;

struct Outcome {
    Status status = Status::ok;
    std::string message;         // when status != ok
    std::vector<float> outputs;  // when ok: batch x spec.outputs
};

struct ServiceOptions {
    int max_batch = 8;
    std::chrono::microseconds max_queue_delay{0};
    int max_queued_images = 64;
    std::int64_t max_image_pixels = 40'000'000;  // per decoded image (decompression bombs)
    int decode_threads = 1;
};

class InferenceService {
public:
    InferenceService(const Model& model, const ModelSpec& spec, const ServiceOptions& options, Metrics& metrics);
    ~InferenceService();  // stop()

    // `done` runs exactly once: on another thread, or on this one when the
    // request is refused at once (queue full, stopping).
    void infer(InferenceRequest request, std::function<void(Outcome)> done);
    ImagePool& pool() { return pool_; }
    // Answers every admitted request, then stops (refusing new ones meanwhile).
    void stop();

private:
    void enqueue(ImageSlots pixels, int batch, std::function<void(Outcome)> done, bool may_run_here);
    ImageSlots decode(const std::vector<std::string>& images);

    const Model& model_;
    const ServiceOptions options_;
    Metrics& metrics_;
    ImagePool pool_;
    Batcher batcher_;
    boost::asio::thread_pool decoders_;
    std::atomic<bool> stopped_{false};
};

}  // namespace onevit::serve
