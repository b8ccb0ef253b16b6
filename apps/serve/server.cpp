#include "server.hpp"

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <thread>

#include "api_key.hpp"
#include "grpc_server.hpp"
#include "http_routes.hpp"
#include "http_server.hpp"
#include "inference_service.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "model_spec.hpp"
#include "serving_state.hpp"
#include "signal_watcher.hpp"
#include "warmup.hpp"

namespace onevit::serve {

namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds milliseconds(double seconds) {
    return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

enum class Count { received, answered, failed };

std::uint64_t inference_requests(const Metrics& metrics, Count count) {
    std::uint64_t n = 0;
    for (Protocol protocol : {Protocol::http, Protocol::grpc})
        n += count == Count::received   ? metrics.infer_received(protocol)
             : count == Count::answered ? metrics.requests(protocol, Endpoint::infer)
                                        : metrics.failures(protocol, Endpoint::infer);
    return n;
}

}  // namespace

int serve(const ServeOptions& options, const Options& model_options, const std::string& version) {
    SignalWatcher signals;  // first: every thread started below inherits the blocked signals
    std::optional<ApiKey> api_key;
    if (!options.api_key_file.empty()) api_key = ApiKey::from_file(options.api_key_file);
    const std::string name = options.name.empty() ? model_name_from_path(options.model_path) : options.name;

    Metrics metrics(options.max_batch);
    ServingState state(name, api_key ? &*api_key : nullptr);
    // The model and its service, once loaded: declared before the transports, so that they
    // outlive every session those still hold when they go (a body being read holds image slots).
    std::optional<Model> model;
    std::optional<ModelSpec> spec;
    std::optional<InferenceService> service;
    std::optional<Backend> backend;
    HttpRoutes routes(state, metrics, version, options.http_threads);
    HttpLimits http_limits;
    http_limits.max_body_bytes = options.max_body_bytes;
    http_limits.max_header_bytes = options.max_header_bytes;
    http_limits.idle_timeout = milliseconds(options.idle_timeout_s);
    http_limits.request_timeout = milliseconds(options.request_timeout_s);
    http_limits.max_connections = options.max_connections;
    HttpServer http(options.host, options.http_port, http_limits, routes, options.http_threads);
    GrpcLimits grpc_limits{options.max_body_bytes, options.max_header_bytes, milliseconds(options.idle_timeout_s)};
    GrpcServer grpc(options.host, options.grpc_port, grpc_limits, state, metrics, version);
    http.start();
    log_line(fmt::format("listening: HTTP on {}:{}, gRPC on {}:{}; loading {}", options.host, http.port(), options.host,
                         grpc.port(), options.model_path));

    const Clock::time_point load_start = Clock::now();
    model.emplace(Model::load(options.model_path, model_options));
    prepare_batch_sizes(*model, options.max_batch);
    const double startup_s = std::chrono::duration<double>(Clock::now() - load_start).count();
    spec.emplace(ModelSpec::of(model->info(), name, options.max_batch));
    ServiceOptions service_options;
    service_options.max_batch = options.max_batch;
    service_options.max_queue_delay = std::chrono::microseconds(options.max_queue_delay_us);
    service_options.max_queued_images = options.max_queue;
    service_options.max_image_pixels = options.max_image_pixels;
    service_options.decode_threads = options.decode_threads > 0 ? options.decode_threads : model->threads();
    service.emplace(*model, *spec, service_options, metrics);
    backend.emplace(Backend{*spec, *service});
    state.set_ready(&*backend);
    log_line(
        fmt::format("ready: model '{}' ({}, {} stream{} x {} threads), batch sizes 1-{} planned and run, {} image "
                    "slots for requests ({:.0f} MiB, {:.0f} touched), {:.1f} s after start",
                    name, to_string(model->precision()), model->streams(), model->streams() > 1 ? "s" : "",
                    model->threads() / model->streams(), options.max_batch, service->pool().slots(),
                    double(service->pool().slots()) * service->pool().image_bytes() / (1 << 20),
                    double(service->pool().warm()) * service->pool().image_bytes() / (1 << 20), startup_s));

    signals.wait();
    state.set_stopping();
    const auto deadline = Clock::now() + milliseconds(options.shutdown_timeout_s);
    http.stop_accepting();
    std::thread grpc_stop(
        [&] { grpc.shutdown(std::chrono::system_clock::now() + milliseconds(options.shutdown_timeout_s)); });
    const bool http_closed = http.wait_closed(deadline);
    grpc_stop.join();
    service->stop();
    http.stop();
    log_line(fmt::format("stopped: {} inference requests received, {} answered ({} with an error){}",
                         inference_requests(metrics, Count::received), inference_requests(metrics, Count::answered),
                         inference_requests(metrics, Count::failed),
                         http_closed ? "" : "; some HTTP connections were still open at --shutdown-timeout-s"));
    return http_closed ? 0 : 1;
}

}  // namespace onevit::serve
