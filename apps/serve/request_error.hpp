// How the serve code refuses a request: the status says which protocol code the
// client gets (HTTP status, gRPC code), the message is the one line it reads in
// the protocol's {"error": "..."} and the server logs.
#pragma once

#include <stdexcept>
#include <string>

namespace onevit::serve {

enum class Status {
    ok,
    bad_request,   // HTTP 400, gRPC INVALID_ARGUMENT
    unauthorized,  // 401, UNAUTHENTICATED
    not_found,     // 404, NOT_FOUND
    too_large,     // 413, RESOURCE_EXHAUSTED
    unavailable,   // 503, UNAVAILABLE: overloaded, not ready yet, or stopping
    internal,      // 500, INTERNAL: the model failed
};

class RequestError : public std::runtime_error {
public:
    RequestError(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    Status status() const { return status_; }

private:
    Status status_;
};

}  // namespace onevit::serve
