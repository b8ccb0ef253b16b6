#include "inference_service.hpp"

#include <fmt/format.h>

#include <boost/asio/post.hpp>

#include <exception>

#include "metrics.hpp"
#include "onevit/error.hpp"
#include "onevit/image.hpp"

namespace onevit::serve {

InferenceService::InferenceService(const Model& model, const ModelSpec& spec, const ServiceOptions& options,
                                   Metrics& metrics)
    : model_(model),
      options_(options),
      metrics_(metrics),
      // Besides the queue: the batches the streams run, and as many arriving.
      pool_(spec.image_floats() * sizeof(float), options.max_queued_images + 2 * model.streams() * options.max_batch,
            2 * model.streams() * options.max_batch),
      batcher_(model, options.max_batch, options.max_queue_delay, options.max_queued_images, metrics,
               [this] { pool_.trim(); }),
      decoders_(std::size_t(options.decode_threads)) {}

InferenceService::~InferenceService() { stop(); }

void InferenceService::infer(InferenceRequest request, std::function<void(Outcome)> done) {
    if (!batcher_.reserve(request.batch)) {
        done({Status::unavailable,
              stopped_ ? "the server is stopping"
                       : fmt::format("the server is busy: its queue holds --max-queue {} images",
                                     options_.max_queued_images),
              {}});
        return;
    }
    metrics_.inflight(+1);
    auto answer = [this, done = std::move(done)](Outcome outcome) {
        metrics_.inflight(-1);
        done(std::move(outcome));
    };
    if (request.images.empty()) {
        enqueue(std::move(request.pixels), request.batch, std::move(answer), request.may_run_here);
        return;
    }
    boost::asio::post(decoders_, [this, images = std::move(request.images), batch = request.batch,
                                  answer = std::move(answer)]() mutable {
        ImageSlots pixels;
        try {
            const auto started = std::chrono::steady_clock::now();
            pixels = decode(images);
            metrics_.observe_decode(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        } catch (const Error& e) {
            batcher_.release(batch);
            answer({Status::bad_request, e.what(), {}});
            return;
        } catch (const RequestError& e) {  // no free image slot
            batcher_.release(batch);
            answer({e.status(), e.what(), {}});
            return;
        } catch (const std::exception& e) {
            // Out of memory, most likely: the request fails, the decoding thread lives on.
            batcher_.release(batch);
            answer({Status::internal, fmt::format("cannot decode the images: {}", e.what()), {}});
            return;
        }
        // With other decoders to decode meanwhile, this one may run the model itself.
        enqueue(std::move(pixels), batch, std::move(answer), options_.decode_threads > 1);
    });
}

ImageSlots InferenceService::decode(const std::vector<std::string>& images) {
    const ModelInfo& info = model_.info();
    ImageSlots pixels(pool_);
    DecodeLimits limits;
    limits.max_pixels = options_.max_image_pixels;
    for (std::size_t i = 0; i < images.size(); ++i) {
        // Straight into the image's slot (a slot holds the model's C x H x W floats): no tensor
        // of its own to zero, fill and copy, for the cache the model's threads share.
        if (!pixels.add()) throw RequestError(Status::unavailable, pool_.full_message());
        try {
            preprocess_image_bytes_into(reinterpret_cast<const std::uint8_t*>(images[i].data()), images[i].size(),
                                        info.arch, info.preprocess, pixels.image(pixels.count() - 1), limits);
        } catch (const Error& e) {
            throw Error(fmt::format("image {} of {}: {}", i, images.size(), e.what()));
        }
    }
    return pixels;
}

void InferenceService::enqueue(ImageSlots pixels, int batch, std::function<void(Outcome)> done, bool may_run_here) {
    auto job = std::make_unique<BatchJob>();
    job->images = batch;
    job->pixels = std::move(pixels);
    job->done = [done = std::move(done)](std::vector<float> outputs, const std::string& error) {
        if (error.empty())
            done({Status::ok, {}, std::move(outputs)});
        else
            done({Status::internal, error, {}});
    };
    batcher_.submit(std::move(job), may_run_here);
}

void InferenceService::stop() {
    if (stopped_.exchange(true)) return;
    batcher_.stop();  // the decoders still run: the images being decoded reach the queue first
    decoders_.join();
}

}  // namespace onevit::serve
