// The gRPC transport: inference.GRPCInferenceService (grpc_predict_v2.proto) on
// Debian's gRPC, with the callback API, so a request waiting for the batcher
// holds no thread. Limits: message size (--max-body-bytes), metadata size
// (--max-header-bytes), idle connections (--idle-timeout-s); overload answers
// UNAVAILABLE at once, as HTTP answers 503.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "metrics.hpp"
#include "serving_state.hpp"

namespace grpc {
class Server;
}

namespace onevit::serve {

struct GrpcLimits {
    std::size_t max_message_bytes = 64 << 20;
    std::size_t max_metadata_bytes = 16 << 10;
    std::chrono::milliseconds idle_timeout{60'000};
};

class GrpcServer {
public:
    // Listens at once (port 0: any free port); throws onevit::Error if it cannot.
    GrpcServer(const std::string& host, int port, const GrpcLimits& limits, const ServingState& state, Metrics& metrics,
               const std::string& server_version);
    ~GrpcServer();

    int port() const { return port_; }
    // Refuses new calls and waits for those in progress until the deadline (then cancels them).
    void shutdown(std::chrono::system_clock::time_point deadline);

private:
    class Service;
    std::unique_ptr<Service> service_;
    std::unique_ptr<grpc::Server> server_;
    int port_ = 0;
    bool shut_down_ = false;
};

}  // namespace onevit::serve
