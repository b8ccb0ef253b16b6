#include "grpc_server.hpp"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <optional>

#include "grpc_codec.hpp"
#include "grpc_predict_v2.grpc.pb.h"
#include "log.hpp"
#include "onevit/error.hpp"

namespace onevit::serve {

namespace {

using Clock = std::chrono::steady_clock;

grpc::StatusCode grpc_code(Status status) {
    switch (status) {
        case Status::ok:
            return grpc::StatusCode::OK;
        case Status::bad_request:
            return grpc::StatusCode::INVALID_ARGUMENT;
        case Status::unauthorized:
            return grpc::StatusCode::UNAUTHENTICATED;
        case Status::not_found:
            return grpc::StatusCode::NOT_FOUND;
        case Status::too_large:
            return grpc::StatusCode::RESOURCE_EXHAUSTED;
        case Status::unavailable:
            return grpc::StatusCode::UNAVAILABLE;
        case Status::internal:
            return grpc::StatusCode::INTERNAL;
    }
    return grpc::StatusCode::INTERNAL;
}

}  // namespace

class GrpcServer::Service final : public inference::GRPCInferenceService::CallbackService {
public:
    Service(const ServingState& state, Metrics& metrics, std::string version)
        : state_(state), metrics_(metrics), version_(std::move(version)) {}

    grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context, const inference::ServerLiveRequest*,
                                         inference::ServerLiveResponse* response) override {
        response->set_live(true);
        return finish(context, Endpoint::live, Status::ok, {});
    }

    grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context, const inference::ServerReadyRequest*,
                                          inference::ServerReadyResponse* response) override {
        if (const auto refused = check_key(context))
            return finish(context, Endpoint::ready, Status::unauthorized, *refused);
        response->set_ready(state_.ready());
        return finish(context, Endpoint::ready, Status::ok, {});
    }

    grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                         const inference::ModelReadyRequest* request,
                                         inference::ModelReadyResponse* response) override {
        if (const auto refused = check_key(context))
            return finish(context, Endpoint::model_ready, Status::unauthorized, *refused);
        if (const auto unknown = check_model(request->name(), request->version()))
            return finish(context, Endpoint::model_ready, Status::not_found, *unknown);
        response->set_ready(state_.ready());
        return finish(context, Endpoint::model_ready, Status::ok, {});
    }

    grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                             const inference::ServerMetadataRequest*,
                                             inference::ServerMetadataResponse* response) override {
        if (const auto refused = check_key(context))
            return finish(context, Endpoint::server_metadata, Status::unauthorized, *refused);
        fill_server_metadata(version_, *response);
        return finish(context, Endpoint::server_metadata, Status::ok, {});
    }

    grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                            const inference::ModelMetadataRequest* request,
                                            inference::ModelMetadataResponse* response) override {
        if (const auto refused = check_key(context))
            return finish(context, Endpoint::model_metadata, Status::unauthorized, *refused);
        if (const auto unknown = check_model(request->name(), request->version()))
            return finish(context, Endpoint::model_metadata, Status::not_found, *unknown);
        const Backend* backend = state_.backend();
        if (!backend)
            return finish(context, Endpoint::model_metadata, Status::unavailable, "the model is still loading");
        fill_model_metadata(backend->spec, *response);
        return finish(context, Endpoint::model_metadata, Status::ok, {});
    }

    grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                         const inference::ModelInferRequest* request,
                                         inference::ModelInferResponse* response) override {
        const Clock::time_point received = Clock::now();
        metrics_.infer_received(Protocol::grpc);
        grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
        // Every answer goes through here: counted, timed, and a failure logged as one line.
        auto answer = [this, reactor, received, peer = context->peer()](Status status, const std::string& message) {
            metrics_.request(Protocol::grpc, Endpoint::infer, status == Status::ok);
            metrics_.observe_infer_duration(Protocol::grpc,
                                            std::chrono::duration<double>(Clock::now() - received).count());
            if (status != Status::ok) log_line(fmt::format("grpc ModelInfer from {}: {}", peer, message));
            reactor->Finish(status == Status::ok ? grpc::Status::OK : grpc::Status(grpc_code(status), message));
        };
        if (const auto refused = check_key(context)) return answer(Status::unauthorized, *refused), reactor;
        if (const auto unknown = check_model(request->model_name(), request->model_version()))
            return answer(Status::not_found, *unknown), reactor;
        const Backend* backend = state_.backend();
        if (!backend) return answer(Status::unavailable, "the model is still loading"), reactor;
        InferenceRequest decoded;
        try {
            decoded = decode_grpc_infer(backend->spec, *request, backend->service.pool());
        } catch (const RequestError& e) {
            return answer(e.status(), e.what()), reactor;
        }
        auto kept = std::make_shared<InferenceRequest>();
        kept->id = decoded.id;
        kept->batch = decoded.batch;
        kept->output = decoded.output;
        backend->service.infer(std::move(decoded), [backend, kept, response, answer](Outcome outcome) {
            if (outcome.status == Status::ok)
                encode_grpc_infer(backend->spec, *kept, std::move(outcome.outputs), *response);
            answer(outcome.status, outcome.message);
        });
        return reactor;
    }

private:
    grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* context, Endpoint endpoint, Status status,
                                     const std::string& message) {
        metrics_.request(Protocol::grpc, endpoint, status == Status::ok);
        if (status != Status::ok) log_line(fmt::format("grpc from {}: {}", context->peer(), message));
        grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
        reactor->Finish(status == Status::ok ? grpc::Status::OK : grpc::Status(grpc_code(status), message));
        return reactor;
    }

    // The refusal's message, or nothing when no key is needed or the right one came.
    std::optional<std::string> check_key(grpc::CallbackServerContext* context) const {
        const ApiKey* key = state_.api_key();
        if (!key) return std::nullopt;
        const auto& metadata = context->client_metadata();
        const auto found = metadata.find("authorization");
        if (found == metadata.end()) return "this server needs an API key: metadata authorization: Bearer KEY";
        if (!key->accepts(std::string_view(found->second.data(), found->second.size()))) return "wrong API key";
        return std::nullopt;
    }

    std::optional<std::string> check_model(const std::string& name, const std::string& version) const {
        if (name != state_.model_name())
            return fmt::format("unknown model '{}' (this server serves '{}')", name, state_.model_name());
        if (!version.empty() && version != kModelVersion)
            return fmt::format("model '{}' has no version '{}' (it has version {})", name, version, kModelVersion);
        return std::nullopt;
    }

    const ServingState& state_;
    Metrics& metrics_;
    const std::string version_;
};

GrpcServer::GrpcServer(const std::string& host, int port, const GrpcLimits& limits, const ServingState& state,
                       Metrics& metrics, const std::string& server_version)
    : service_(std::make_unique<Service>(state, metrics, server_version)) {
    const std::string address =
        host.find(':') == std::string::npos ? fmt::format("{}:{}", host, port) : fmt::format("[{}]:{}", host, port);
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<std::size_t>(limits.max_message_bytes, INT32_MAX)));
    builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, static_cast<int>(limits.max_metadata_bytes));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, static_cast<int>(limits.idle_timeout.count()));
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) throw Error(fmt::format("cannot listen for gRPC on {}", address));
}

GrpcServer::~GrpcServer() { shutdown(std::chrono::system_clock::now()); }

void GrpcServer::shutdown(std::chrono::system_clock::time_point deadline) {
    if (!server_ || shut_down_) return;
    shut_down_ = true;
    server_->Shutdown(deadline);
}

}  // namespace onevit::serve
