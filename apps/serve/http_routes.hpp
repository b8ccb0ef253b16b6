// The Open Inference Protocol's HTTP/REST endpoints over the HTTP transport:
//   GET  /v2/health/live, /v2/health/ready, /v2 (server metadata)
//   GET  /v2/models/NAME[/versions/1], .../ready       model metadata, readiness
//   POST /v2/models/NAME[/versions/1]/infer           inference (JSON, binary tensor data)
//   GET  /metrics                                      Prometheus text format
// With an API key, everything but liveness needs "Authorization: Bearer KEY".
// Every refusal is a {"error": "..."} body and one log line.
#pragma once

#include <string>

#include "http_server.hpp"
#include "metrics.hpp"
#include "serving_state.hpp"

namespace onevit::serve {

class HttpRoutes : public HttpHandler {
public:
    // io_threads: the transport's; with more than one, an idle server's lone request
    // runs the model on its I/O thread (the others keep serving meanwhile).
    HttpRoutes(const ServingState& state, Metrics& metrics, std::string server_version, int io_threads);

    std::optional<HttpResponse> screen(const HttpRequest::header_type& header, const std::string& peer,
                                       RequestBody& body) override;
    void handle(HttpRequest request, const std::string& peer, Respond respond) override;
    HttpResponse refusal(boost::beast::http::status status, const std::string& message,
                         const std::string& peer) override;

private:
    void infer(HttpRequest request, const std::string& peer, Respond respond);

    const ServingState& state_;
    Metrics& metrics_;
    const std::string server_version_;
    const bool run_on_io_thread_;
};

}  // namespace onevit::serve
