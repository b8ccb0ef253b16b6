// What GET /metrics reports, in Prometheus' text format (README, "onevit serve"):
//   onevit_infer_received_total{protocol}             counter: inference requests received whole
//   onevit_requests_total{protocol,endpoint}          counter: requests answered
//   onevit_request_failures_total{protocol,endpoint}  counter: answered with an error
//   onevit_request_duration_seconds{protocol}         histogram: inference requests, received to answered
//   onevit_queue_duration_seconds                     histogram: time in the batcher's queue
//   onevit_compute_duration_seconds                   histogram: model runs (one batch each), start to result
//   onevit_decode_duration_seconds                    histogram: decoding and preprocessing a request's images
//   onevit_batch_size                                 histogram: images per model run
//   onevit_images_total                               counter: images run (counted as their run ends)
//   onevit_images_per_second                          gauge: over the last 10 s
//   onevit_inflight_requests                          gauge: inference requests admitted, not yet answered
//   onevit_queued_requests                            gauge: inference requests waiting for a stream (decoding
//   included) onevit_queued_images                              gauge: their images
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace onevit::serve {

enum class Protocol { http, grpc };
enum class Endpoint { live, ready, server_metadata, model_metadata, model_ready, infer, metrics, other };
inline constexpr int kEndpoints = 8;

class Histogram {
public:
    explicit Histogram(std::vector<double> bounds);
    void observe(double value);
    // The _bucket, _sum and _count lines of `name`, with `labels` ("" or `a="b",`).
    void render(std::string& out, const std::string& name, const std::string& labels) const;

private:
    std::vector<double> bounds_;
    mutable std::mutex mutex_;
    std::vector<std::uint64_t> counts_;  // per bound, not cumulative; one more for +Inf
    double sum_ = 0;
};

class Metrics {
public:
    explicit Metrics(int max_batch);

    void infer_received(Protocol protocol) { ++received_[int(protocol)]; }
    void request(Protocol protocol, Endpoint endpoint, bool ok);
    void observe_infer_duration(Protocol protocol, double seconds);
    void observe_queue_time(double seconds);
    void observe_decode(double seconds);
    // A model run of `images` that took `seconds`, once it has ended.
    void observe_batch(int images, double seconds);
    void inflight(int change) { inflight_ += change; }
    void set_queued(int requests, int images) { queued_requests_ = requests, queued_images_ = images; }

    std::uint64_t infer_received(Protocol protocol) const { return received_[int(protocol)]; }
    std::uint64_t requests(Protocol protocol, Endpoint endpoint) const;
    std::uint64_t failures(Protocol protocol, Endpoint endpoint) const;
    std::string render() const;

private:
    using Clock = std::chrono::steady_clock;
    struct Counts {
        std::atomic<std::uint64_t> answered{0};
        std::atomic<std::uint64_t> failed{0};
    };
    double images_per_second() const;

    std::array<std::atomic<std::uint64_t>, 2> received_{};  // per protocol
    std::array<std::array<Counts, kEndpoints>, 2> counts_;  // [protocol][endpoint]
    std::array<Histogram, 2> infer_duration_;               // per protocol
    Histogram queue_time_;
    Histogram compute_time_;
    Histogram decode_time_;
    Histogram batch_size_;
    std::atomic<std::uint64_t> images_{0};
    std::atomic<int> inflight_{0};
    std::atomic<int> queued_requests_{0};
    std::atomic<int> queued_images_{0};

    // Images per second: one slot per second of the last 16, for the rate gauge.
    mutable std::mutex rate_mutex_;
    const Clock::time_point started_ = Clock::now();
    std::array<std::int64_t, 16> rate_second_{};
    std::array<std::uint64_t, 16> rate_images_{};
};

}  // namespace onevit::serve
