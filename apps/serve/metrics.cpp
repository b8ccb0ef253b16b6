#include "metrics.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace onevit::serve {

namespace {

constexpr const char* kProtocolNames[] = {"http", "grpc"};
constexpr const char* kEndpointNames[] = {"live",        "ready", "server_metadata", "model_metadata",
                                          "model_ready", "infer", "metrics",         "other"};
constexpr int kRateWindowSeconds = 10;

std::vector<double> latency_bounds() { return {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10}; }

// Powers of two up to max_batch, and max_batch itself.
std::vector<double> batch_bounds(int max_batch) {
    std::vector<double> bounds;
    for (int b = 1; b < max_batch; b *= 2) bounds.push_back(b);
    bounds.push_back(max_batch);
    return bounds;
}

void help(std::string& out, const char* name, const char* type, const char* text) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, text, name, type);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
    const std::size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
    std::lock_guard<std::mutex> lock(mutex_);
    ++counts_[bucket];
    sum_ += value;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        cumulative += counts_[i];
        const std::string bound = i < bounds_.size() ? fmt::format("{}", bounds_[i]) : "+Inf";
        out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, labels, bound, cumulative);
    }
    const std::string plain = labels.empty() ? "" : "{" + labels.substr(0, labels.size() - 1) + "}";
    out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, plain, sum_, name, plain, cumulative);
}

Metrics::Metrics(int max_batch)
    : infer_duration_{Histogram(latency_bounds()), Histogram(latency_bounds())},
      queue_time_(latency_bounds()),
      compute_time_(latency_bounds()),
      decode_time_(latency_bounds()),
      batch_size_(batch_bounds(max_batch)) {
    rate_second_.fill(-1);
}

void Metrics::request(Protocol protocol, Endpoint endpoint, bool ok) {
    Counts& counts = counts_[int(protocol)][int(endpoint)];
    ++counts.answered;
    if (!ok) ++counts.failed;
}

void Metrics::observe_infer_duration(Protocol protocol, double seconds) {
    infer_duration_[int(protocol)].observe(seconds);
}

void Metrics::observe_queue_time(double seconds) { queue_time_.observe(seconds); }

void Metrics::observe_decode(double seconds) { decode_time_.observe(seconds); }

void Metrics::observe_batch(int images, double seconds) {
    batch_size_.observe(images);
    compute_time_.observe(seconds);
    images_ += images;
    const std::int64_t second = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count();
    std::lock_guard<std::mutex> lock(rate_mutex_);
    const std::size_t slot = second % rate_second_.size();
    if (rate_second_[slot] != second) rate_second_[slot] = second, rate_images_[slot] = 0;
    rate_images_[slot] += images;
}

double Metrics::images_per_second() const {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count();
    // The last kRateWindowSeconds whole seconds (the current one is still filling).
    std::uint64_t images = 0;
    std::lock_guard<std::mutex> lock(rate_mutex_);
    for (std::size_t slot = 0; slot < rate_second_.size(); ++slot)
        if (rate_second_[slot] < now && rate_second_[slot] >= now - kRateWindowSeconds) images += rate_images_[slot];
    const std::int64_t window = std::min<std::int64_t>(now, kRateWindowSeconds);
    return window > 0 ? double(images) / double(window) : 0.0;
}

std::uint64_t Metrics::requests(Protocol protocol, Endpoint endpoint) const {
    return counts_[int(protocol)][int(endpoint)].answered;
}

std::uint64_t Metrics::failures(Protocol protocol, Endpoint endpoint) const {
    return counts_[int(protocol)][int(endpoint)].failed;
}

std::string Metrics::render() const {
    std::string out;
    help(out, "onevit_infer_received_total", "counter", "Inference requests received whole, by protocol.");
    for (int p = 0; p < 2; ++p)
        out +=
            fmt::format("onevit_infer_received_total{{protocol=\"{}\"}} {}\n", kProtocolNames[p], received_[p].load());
    help(out, "onevit_requests_total", "counter", "Requests answered, by protocol and endpoint.");
    for (int p = 0; p < 2; ++p)
        for (int e = 0; e < kEndpoints; ++e)
            out += fmt::format("onevit_requests_total{{protocol=\"{}\",endpoint=\"{}\"}} {}\n", kProtocolNames[p],
                               kEndpointNames[e], counts_[p][e].answered.load());
    help(out, "onevit_request_failures_total", "counter", "Requests answered with an error, by protocol and endpoint.");
    for (int p = 0; p < 2; ++p)
        for (int e = 0; e < kEndpoints; ++e)
            out += fmt::format("onevit_request_failures_total{{protocol=\"{}\",endpoint=\"{}\"}} {}\n",
                               kProtocolNames[p], kEndpointNames[e], counts_[p][e].failed.load());
    help(out, "onevit_request_duration_seconds", "histogram",
         "Inference requests, from received to answered, by protocol.");
    for (int p = 0; p < 2; ++p)
        infer_duration_[p].render(out, "onevit_request_duration_seconds",
                                  fmt::format("protocol=\"{}\",", kProtocolNames[p]));
    help(out, "onevit_queue_duration_seconds", "histogram", "Time requests waited in the batcher's queue.");
    queue_time_.render(out, "onevit_queue_duration_seconds", "");
    help(out, "onevit_compute_duration_seconds", "histogram", "Model runs (one batch each), from start to result.");
    compute_time_.render(out, "onevit_compute_duration_seconds", "");
    help(out, "onevit_decode_duration_seconds", "histogram",
         "Decoding and preprocessing the images of one request (image input).");
    decode_time_.render(out, "onevit_decode_duration_seconds", "");
    help(out, "onevit_batch_size", "histogram", "Images per model run.");
    batch_size_.render(out, "onevit_batch_size", "");
    help(out, "onevit_images_total", "counter", "Images run through the model, counted as their run ends.");
    out += fmt::format("onevit_images_total {}\n", images_.load());
    help(out, "onevit_images_per_second", "gauge", "Images run per second over the last 10 seconds.");
    out += fmt::format("onevit_images_per_second {}\n", images_per_second());
    help(out, "onevit_inflight_requests", "gauge", "Inference requests admitted and not yet answered.");
    out += fmt::format("onevit_inflight_requests {}\n", inflight_.load());
    help(out, "onevit_queued_requests", "gauge", "Inference requests waiting for a stream, decoding included.");
    out += fmt::format("onevit_queued_requests {}\n", queued_requests_.load());
    help(out, "onevit_queued_images", "gauge", "Images waiting for a stream, decoding included.");
    out += fmt::format("onevit_queued_images {}\n", queued_images_.load());
    return out;
}

}  // namespace onevit::serve
