#include "http_routes.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <charconv>
#include <chrono>
#include <string_view>
#include <vector>

#include "http_infer_codec.hpp"
#include "log.hpp"
#include "metadata.hpp"

namespace onevit::serve {

namespace http = boost::beast::http;

namespace {

using Clock = std::chrono::steady_clock;

// Beast's string_view is Boost's in 1.74.
std::string_view text(boost::beast::string_view s) { return {s.data(), s.size()}; }

struct Route {
    Endpoint endpoint = Endpoint::other;
    http::verb method = http::verb::get;
    std::string model;    // the NAME of /v2/models/NAME/...
    std::string version;  // the V of .../versions/V, or empty
};

std::vector<std::string_view> segments_of(std::string_view target) {
    target = target.substr(0, target.find('?'));
    std::vector<std::string_view> segments;
    while (!target.empty()) {
        const std::size_t slash = target.find('/');
        if (slash != 0) segments.push_back(target.substr(0, slash));
        if (slash == std::string_view::npos) break;
        target.remove_prefix(slash + 1);
    }
    return segments;
}

Route route(Endpoint endpoint) {
    Route r;
    r.endpoint = endpoint;
    return r;
}

std::optional<Route> route_of(std::string_view target) {
    const std::vector<std::string_view> s = segments_of(target);
    const std::size_t n = s.size();
    if (n == 1 && s[0] == "metrics") return route(Endpoint::metrics);
    if (n == 0 || s[0] != "v2") return std::nullopt;
    if (n == 1) return route(Endpoint::server_metadata);
    if (n == 3 && s[1] == "health" && s[2] == "live") return route(Endpoint::live);
    if (n == 3 && s[1] == "health" && s[2] == "ready") return route(Endpoint::ready);
    if (n < 3 || s[1] != "models") return std::nullopt;
    Route model = route(Endpoint::model_metadata);
    model.model = std::string(s[2]);
    std::size_t at = 3;
    if (n >= 5 && s[3] == "versions") model.version = std::string(s[4]), at = 5;
    if (at == n) return model;
    if (at + 1 != n) return std::nullopt;
    if (s[at] == "ready")
        model.endpoint = Endpoint::model_ready;
    else if (s[at] == "infer")
        model.endpoint = Endpoint::infer, model.method = http::verb::post;
    else
        return std::nullopt;
    return model;
}

http::status http_status(Status status) {
    switch (status) {
        case Status::ok:
            return http::status::ok;
        case Status::bad_request:
            return http::status::bad_request;
        case Status::unauthorized:
            return http::status::unauthorized;
        case Status::not_found:
            return http::status::not_found;
        case Status::too_large:
            return http::status::payload_too_large;
        case Status::unavailable:
            return http::status::service_unavailable;
        case Status::internal:
            return http::status::internal_server_error;
    }
    return http::status::internal_server_error;
}

HttpResponse json_response(http::status status, std::string body) {
    HttpResponse response(status, 11);
    response.set(http::field::content_type, "application/json");
    response.body() = std::move(body);
    return response;
}

std::optional<std::size_t> header_length_of(const HttpRequest& request) {
    const auto found = request.find("Inference-Header-Content-Length");
    if (found == request.end()) return std::nullopt;
    const std::string_view value = text(found->value());
    std::size_t length = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (ec != std::errc() || end != value.data() + value.size())
        throw RequestError(Status::bad_request,
                           fmt::format("Inference-Header-Content-Length '{}' is not a byte count", value));
    return length;
}

}  // namespace

HttpRoutes::HttpRoutes(const ServingState& state, Metrics& metrics, std::string server_version, int io_threads)
    : state_(state), metrics_(metrics), server_version_(std::move(server_version)), run_on_io_thread_(io_threads > 1) {}

HttpResponse HttpRoutes::refusal(http::status status, const std::string& message, const std::string& peer) {
    log_line(fmt::format("http {} from {}: {}", static_cast<unsigned>(status), peer, message));
    metrics_.request(Protocol::http, Endpoint::other, false);
    return json_response(status, error_body(message));
}

std::optional<HttpResponse> HttpRoutes::screen(const HttpRequest::header_type& header, const std::string& peer,
                                               RequestBody& body) {
    const std::string_view target = text(header.target());
    const std::optional<Route> route = route_of(target);
    const Endpoint endpoint = route ? route->endpoint : Endpoint::other;
    const auto refuse = [&](http::status status, const std::string& message) {
        log_line(fmt::format("http {} {} {} from {}: {}", static_cast<unsigned>(status), text(header.method_string()),
                             target, peer, message));
        metrics_.request(Protocol::http, endpoint, false);
        return std::optional<HttpResponse>(json_response(status, error_body(message)));
    };
    if (endpoint != Endpoint::live && state_.api_key()) {
        const auto authorization = header.find(http::field::authorization);
        const std::string_view value =
            authorization == header.end() ? std::string_view() : text(authorization->value());
        if (!state_.api_key()->accepts(value)) {
            std::optional<HttpResponse> response =
                refuse(http::status::unauthorized, authorization == header.end()
                                                       ? "this server needs an API key: Authorization: Bearer KEY"
                                                       : "wrong API key");
            response->set(http::field::www_authenticate, "Bearer");
            return response;
        }
    }
    if (!route) return refuse(http::status::not_found, fmt::format("no endpoint {}", target));
    if (header.method() != route->method) {
        std::optional<HttpResponse> response = refuse(
            http::status::method_not_allowed, fmt::format("{} takes {}", target, text(http::to_string(route->method))));
        response->set(http::field::allow, http::to_string(route->method));
        return response;
    }
    if (!route->model.empty() && route->model != state_.model_name())
        return refuse(http::status::not_found,
                      fmt::format("unknown model '{}' (this server serves '{}')", route->model, state_.model_name()));
    if (!route->version.empty() && route->version != kModelVersion)
        return refuse(http::status::not_found, fmt::format("model '{}' has no version '{}' (it has version {})",
                                                           route->model, route->version, kModelVersion));
    const auto encoding = header.find(http::field::content_encoding);
    if (encoding != header.end() && !boost::beast::iequals(encoding->value(), "identity"))
        return refuse(
            http::status::unsupported_media_type,
            fmt::format("Content-Encoding {} is not supported; send the body as it is", text(encoding->value())));
    const Backend* backend = state_.backend();
    if (endpoint == Endpoint::infer && backend) {
        body.pool = &backend->service.pool();
        body.max_images = backend->spec.max_batch;
    }
    return std::nullopt;
}

void HttpRoutes::handle(HttpRequest request, const std::string& peer, Respond respond) {
    const std::string_view target = text(request.target());
    const std::optional<Route> route = route_of(target);
    if (!route) {  // screen() let it through: cannot happen
        respond(refusal(http::status::not_found, fmt::format("no endpoint {}", target), peer));
        return;
    }
    if (route->endpoint == Endpoint::infer) return infer(std::move(request), peer, std::move(respond));

    const Backend* backend = state_.backend();
    const bool ready = state_.ready();
    const auto answer = [&](http::status status, std::string body) {
        metrics_.request(Protocol::http, route->endpoint, status == http::status::ok);
        respond(json_response(status, std::move(body)));
    };
    switch (route->endpoint) {
        case Endpoint::live:
            return answer(http::status::ok, R"({"live": true})");
        case Endpoint::ready:
            return answer(ready ? http::status::ok : http::status::service_unavailable,
                          ready ? R"({"ready": true})" : R"({"ready": false})");
        case Endpoint::server_metadata:
            return answer(http::status::ok, server_metadata_json(server_version_));
        case Endpoint::model_metadata:
            if (!backend) return answer(http::status::service_unavailable, error_body("the model is still loading"));
            return answer(http::status::ok, model_metadata_json(backend->spec));
        case Endpoint::model_ready:
            return answer(
                ready ? http::status::ok : http::status::service_unavailable,
                fmt::format(R"({{"name": {}, "ready": {}}})", nlohmann::json(state_.model_name()).dump(), ready));
        case Endpoint::metrics: {
            metrics_.request(Protocol::http, Endpoint::metrics, true);
            HttpResponse response(http::status::ok, 11);
            response.set(http::field::content_type, "text/plain; version=0.0.4");
            response.body() = metrics_.render();
            return respond(std::move(response));
        }
        default:
            return answer(http::status::not_found, error_body("no such endpoint"));
    }
}

void HttpRoutes::infer(HttpRequest request, const std::string& peer, Respond respond) {
    const Clock::time_point received = Clock::now();
    metrics_.infer_received(Protocol::http);
    const std::string target(request.target());
    // Every answer goes through here: counted, timed, and a failure logged as one line.
    auto finish = [this, received, target, peer, respond = std::move(respond)](
                      Status status, const std::string& message, HttpResponse response) {
        metrics_.request(Protocol::http, Endpoint::infer, status == Status::ok);
        metrics_.observe_infer_duration(Protocol::http, std::chrono::duration<double>(Clock::now() - received).count());
        if (status != Status::ok) {
            log_line(fmt::format("http {} POST {} from {}: {}", static_cast<unsigned>(http_status(status)), target,
                                 peer, message));
            response = json_response(http_status(status), error_body(message));
        }
        respond(std::move(response));
    };
    const Backend* backend = state_.backend();
    if (!backend) return finish(Status::unavailable, "the model is still loading", {});
    InferenceRequest decoded;
    try {
        decoded = decode_http_infer(backend->spec, request.body(), header_length_of(request), backend->service.pool());
    } catch (const RequestError& e) {
        return finish(e.status(), e.what(), {});
    }
    decoded.may_run_here = run_on_io_thread_;
    request.body().text = std::string();
    request.body().binary.clear();
    auto shared_request = std::make_shared<InferenceRequest>();
    shared_request->id = decoded.id;
    shared_request->batch = decoded.batch;
    shared_request->output = decoded.output;
    backend->service.infer(std::move(decoded), [backend, shared_request, finish = std::move(finish)](Outcome outcome) {
        if (outcome.status != Status::ok) return finish(outcome.status, outcome.message, {});
        HttpInferResponse encoded;
        try {
            encoded = encode_http_infer(backend->spec, *shared_request, std::move(outcome.outputs));
        } catch (const RequestError& e) {
            return finish(e.status(), e.what(), {});
        }
        HttpResponse response(http::status::ok, 11);
        if (encoded.header_length) {
            response.set(http::field::content_type, "application/octet-stream");
            response.set("Inference-Header-Content-Length", std::to_string(*encoded.header_length));
        } else {
            response.set(http::field::content_type, "application/json");
        }
        response.body() = std::move(encoded.body);
        finish(Status::ok, {}, std::move(response));
    });
}

}  // namespace onevit::serve
