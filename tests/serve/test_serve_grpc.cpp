// onevit serve's gRPC transport (inference.GRPCInferenceService) end to end on
// the bundled model, through the stub protoc generates from the protocol's
// .proto: what CI checks of gRPC without PyPI (Triton's own client drives it in
// triton_client_test.py).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "api_key.hpp"
#include "digits_model_test.hpp"
#include "grpc_predict_v2.grpc.pb.h"
#include "grpc_server.hpp"
#include "inference_service.hpp"
#include "metrics.hpp"
#include "model_spec.hpp"
#include "onevit/model.hpp"
#include "serving_state.hpp"

namespace onevit::serve {
namespace {

constexpr int kMaxBatch = 4;

// The bundled digits model served over gRPC on a free port, as server.cpp
// composes it (without HTTP and signals), with or without an API key.
class GrpcServe {
public:
    explicit GrpcServe(const Model& model, std::optional<std::string> key = std::nullopt,
                       ServiceOptions options = service_options())
        : spec_(ModelSpec::of(model.info(), "digits_vit", kMaxBatch)),
          metrics_(kMaxBatch),
          service_(model, spec_, options, metrics_),
          backend_{spec_, service_},
          key_(key ? std::make_optional(ApiKey(*key)) : std::nullopt),
          state_("digits_vit", key_ ? &*key_ : nullptr),
          server_("127.0.0.1", 0, GrpcLimits{}, state_, metrics_, "test") {
        state_.set_ready(&backend_);
        stub_ = inference::GRPCInferenceService::NewStub(
            grpc::CreateChannel("127.0.0.1:" + std::to_string(server_.port()), grpc::InsecureChannelCredentials()));
    }
    ~GrpcServe() {
        state_.set_stopping();
        server_.shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
        service_.stop();
    }

    static ServiceOptions service_options() {
        ServiceOptions options;
        options.max_batch = kMaxBatch;
        return options;
    }

    inference::GRPCInferenceService::Stub& stub() { return *stub_; }
    const Metrics& metrics() const { return metrics_; }
    InferenceService& service() { return service_; }

private:
    ModelSpec spec_;
    Metrics metrics_;
    InferenceService service_;
    Backend backend_;
    std::optional<ApiKey> key_;
    ServingState state_;
    GrpcServer server_;
    std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

// A call's context, with a deadline so that a broken server fails the test instead of hanging it.
std::unique_ptr<grpc::ClientContext> context(const std::string& authorization = "") {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (!authorization.empty()) c->AddMetadata("authorization", authorization);
    return c;
}

inference::ModelInferRequest pixel_request(const std::vector<float>& pixels, int batch, bool raw = true) {
    inference::ModelInferRequest request;
    request.set_model_name("digits_vit");
    request.set_id("grpc-1");
    auto* input = request.add_inputs();
    input->set_name("pixel_values");
    input->set_datatype("FP32");
    for (std::int64_t dim : {std::int64_t(batch), std::int64_t(1), std::int64_t(32), std::int64_t(32)})
        input->add_shape(dim);
    if (raw)
        request.add_raw_input_contents(std::string(reinterpret_cast<const char*>(pixels.data()), pixels.size() * 4));
    else
        for (float v : pixels) input->mutable_contents()->add_fp32_contents(v);
    return request;
}

std::vector<float> raw_floats(const inference::ModelInferResponse& response) {
    if (response.raw_output_contents_size() != 1) return {};
    const std::string& raw = response.raw_output_contents(0);
    std::vector<float> values(raw.size() / 4);
    std::memcpy(values.data(), raw.data(), values.size() * 4);
    return values;
}

using GrpcServeTest = DigitsModelTest<1>;

TEST_F(GrpcServeTest, HealthAndMetadata) {
    GrpcServe serve(*model_);
    inference::ServerLiveResponse live;
    ASSERT_TRUE(serve.stub().ServerLive(context().get(), {}, &live).ok());
    EXPECT_TRUE(live.live());
    inference::ServerReadyResponse ready;
    ASSERT_TRUE(serve.stub().ServerReady(context().get(), {}, &ready).ok());
    EXPECT_TRUE(ready.ready());
    inference::ModelReadyRequest model_ready_request;
    model_ready_request.set_name("digits_vit");
    inference::ModelReadyResponse model_ready;
    ASSERT_TRUE(serve.stub().ModelReady(context().get(), model_ready_request, &model_ready).ok());
    EXPECT_TRUE(model_ready.ready());

    inference::ServerMetadataResponse server;
    ASSERT_TRUE(serve.stub().ServerMetadata(context().get(), {}, &server).ok());
    EXPECT_EQ(server.name(), "onevit");
    EXPECT_EQ(std::vector<std::string>(server.extensions().begin(), server.extensions().end()),
              (std::vector<std::string>{"binary_tensor_data", "classification"}));

    inference::ModelMetadataRequest request;
    request.set_name("digits_vit");
    inference::ModelMetadataResponse metadata;
    ASSERT_TRUE(serve.stub().ModelMetadata(context().get(), request, &metadata).ok());
    EXPECT_EQ(metadata.name(), "digits_vit");
    ASSERT_EQ(metadata.inputs_size(), 2);
    EXPECT_EQ(metadata.inputs(0).name(), "pixel_values");
    EXPECT_EQ(metadata.inputs(0).datatype(), "FP32");
    EXPECT_EQ(std::vector<std::int64_t>(metadata.inputs(0).shape().begin(), metadata.inputs(0).shape().end()),
              (std::vector<std::int64_t>{-1, 1, 32, 32}));
    EXPECT_EQ(metadata.inputs(1).name(), "image");
    EXPECT_EQ(metadata.inputs(1).datatype(), "BYTES");
    EXPECT_EQ(std::vector<std::int64_t>(metadata.inputs(1).shape().begin(), metadata.inputs(1).shape().end()),
              (std::vector<std::int64_t>{-1}));
    ASSERT_EQ(metadata.outputs_size(), 1);
    EXPECT_EQ(metadata.outputs(0).name(), "logits");
    EXPECT_EQ(metadata.outputs(0).datatype(), "FP32");
    EXPECT_EQ(std::vector<std::int64_t>(metadata.outputs(0).shape().begin(), metadata.outputs(0).shape().end()),
              (std::vector<std::int64_t>{-1, 10}));

    request.set_name("no_such_model");
    const grpc::Status unknown = serve.stub().ModelMetadata(context().get(), request, &metadata);
    EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(unknown.error_message().find("unknown model 'no_such_model'"), std::string::npos)
        << unknown.error_message();
}

TEST_F(GrpcServeTest, TensorInferenceIsModelRunBitForBit) {
    GrpcServe serve(*model_);
    for (int batch : {1, 3, kMaxBatch})
        for (bool raw : {true, false}) {
            const std::vector<float> pixels = random_images(batch, 100 + batch);
            inference::ModelInferResponse response;
            const grpc::Status status =
                serve.stub().ModelInfer(context().get(), pixel_request(pixels, batch, raw), &response);
            ASSERT_TRUE(status.ok()) << status.error_message();
            EXPECT_EQ(response.id(), "grpc-1");
            ASSERT_EQ(response.outputs_size(), 1);
            EXPECT_EQ(response.outputs(0).name(), "logits");
            EXPECT_EQ(response.outputs(0).datatype(), "FP32");
            EXPECT_EQ(std::vector<std::int64_t>(response.outputs(0).shape().begin(), response.outputs(0).shape().end()),
                      (std::vector<std::int64_t>{batch, 10}));
            EXPECT_EQ(raw_floats(response), model_->run(pixels.data(), batch))
                << "batch " << batch << (raw ? ", raw contents" : ", fp32_contents");
        }
}

TEST_F(GrpcServeTest, ClassificationGivesTheTopKOfTheLogits) {
    GrpcServe serve(*model_);
    const std::vector<float> pixels = random_images(2, 5);
    inference::ModelInferRequest request = pixel_request(pixels, 2);
    auto* output = request.add_outputs();
    output->set_name("logits");
    (*output->mutable_parameters())["classification"].set_int64_param(3);
    inference::ModelInferResponse response;
    const grpc::Status status = serve.stub().ModelInfer(context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.outputs_size(), 1);
    EXPECT_EQ(response.outputs(0).datatype(), "BYTES");
    EXPECT_EQ(std::vector<std::int64_t>(response.outputs(0).shape().begin(), response.outputs(0).shape().end()),
              (std::vector<std::int64_t>{2, 3}));
    // BYTES: each string a 4-byte length and its bytes, "prob:index" or "prob:index:label".
    const std::string& raw = response.raw_output_contents(0);
    std::vector<std::string> strings;
    for (std::size_t at = 0; at + 4 <= raw.size();) {
        std::uint32_t length = 0;
        std::memcpy(&length, raw.data() + at, 4);
        strings.push_back(raw.substr(at + 4, length));
        at += 4 + length;
    }
    ASSERT_EQ(strings.size(), 6u);
    const std::vector<float> logits = model_->run(pixels.data(), 2);
    const std::regex format(R"(([0-9.e+-]+):([0-9]+)(:.*)?)");
    for (int image = 0; image < 2; ++image) {
        // The classes by logit, highest first (softmax keeps the order).
        std::vector<int> order(10);
        for (int i = 0; i < 10; ++i) order[i] = i;
        const float* row = logits.data() + image * 10;
        std::stable_sort(order.begin(), order.end(), [row](int a, int b) { return row[a] > row[b]; });
        float previous = 1.f;
        for (int k = 0; k < 3; ++k) {
            std::smatch match;
            const std::string& s = strings[std::size_t(image) * 3 + k];
            ASSERT_TRUE(std::regex_match(s, match, format)) << s;
            EXPECT_EQ(std::stoi(match[2]), order[k]) << "image " << image << " rank " << k << ": " << s;
            const float prob = std::stof(match[1]);
            EXPECT_TRUE(prob > 0.f && prob <= previous) << s;
            previous = prob;
        }
    }
}

TEST_F(GrpcServeTest, BadRequestsAreRefusedAndTheServerServesOn) {
    GrpcServe serve(*model_);
    const std::vector<float> pixels = random_images(1, 9);
    struct Case {
        const char* what;
        inference::ModelInferRequest request;
        grpc::StatusCode code;
        const char* words;
    };
    std::vector<Case> cases;
    {
        inference::ModelInferRequest r = pixel_request(pixels, 1);
        r.mutable_inputs(0)->set_shape(2, 7);
        cases.push_back({"a wrong shape", r, grpc::StatusCode::INVALID_ARGUMENT, "shape"});
    }
    {
        inference::ModelInferRequest r = pixel_request(pixels, 1);
        r.mutable_inputs(0)->set_datatype("INT32");
        cases.push_back({"a wrong datatype", r, grpc::StatusCode::INVALID_ARGUMENT, "FP32"});
    }
    {
        inference::ModelInferRequest r = pixel_request(pixels, 1);
        r.mutable_raw_input_contents(0)->resize(100);
        cases.push_back({"truncated raw contents", r, grpc::StatusCode::INVALID_ARGUMENT, "bytes"});
    }
    {
        inference::ModelInferRequest r = pixel_request(pixels, 1);
        *r.add_inputs() = r.inputs(0);
        cases.push_back({"two inputs", r, grpc::StatusCode::INVALID_ARGUMENT, "exactly one"});
    }
    {
        inference::ModelInferRequest r = pixel_request(pixels, 1);
        r.clear_raw_input_contents();
        cases.push_back({"no data", r, grpc::StatusCode::INVALID_ARGUMENT, "no data"});
    }
    {
        std::vector<float> nan = pixels;
        nan[17] = std::nanf("");
        cases.push_back({"NaN pixels", pixel_request(nan, 1), grpc::StatusCode::INVALID_ARGUMENT, "finite"});
    }
    {
        inference::ModelInferRequest r = pixel_request(random_images(kMaxBatch + 1, 1), kMaxBatch + 1);
        cases.push_back({"a batch over --max-batch", r, grpc::StatusCode::INVALID_ARGUMENT, "--max-batch"});
    }
    {
        inference::ModelInferRequest r;
        r.set_model_name("digits_vit");
        auto* input = r.add_inputs();
        input->set_name("image");
        input->set_datatype("BYTES");
        input->add_shape(1);
        input->mutable_contents()->add_bytes_contents("not an image at all");
        cases.push_back({"an undecodable image", r, grpc::StatusCode::INVALID_ARGUMENT, "image 0 of 1"});
    }
    {
        inference::ModelInferRequest r = pixel_request(pixels, 1);
        r.set_model_name("no_such_model");
        cases.push_back({"an unknown model", r, grpc::StatusCode::NOT_FOUND, "unknown model"});
    }
    {
        inference::ModelInferRequest r = pixel_request(pixels, 1);
        r.add_outputs()->set_name("probs");
        cases.push_back({"an unknown output", r, grpc::StatusCode::INVALID_ARGUMENT, "unknown output"});
    }
    for (const Case& c : cases) {
        inference::ModelInferResponse response;
        const grpc::Status status = serve.stub().ModelInfer(context().get(), c.request, &response);
        EXPECT_EQ(status.error_code(), c.code) << c.what << ": " << status.error_message();
        EXPECT_NE(status.error_message().find(c.words), std::string::npos) << c.what << ": " << status.error_message();
        EXPECT_EQ(status.error_message().find('\n'), std::string::npos) << c.what << ": one line";
        // The server still serves a good request.
        const grpc::Status good = serve.stub().ModelInfer(context().get(), pixel_request(pixels, 1), &response);
        ASSERT_TRUE(good.ok()) << "after " << c.what << ": " << good.error_message();
        EXPECT_EQ(raw_floats(response), model_->run(pixels.data(), 1)) << "after " << c.what;
    }
}

TEST_F(GrpcServeTest, OverTheQueueLimitUnavailableAtOnce) {
    // The queue holds 4 images at most. The model's one stream is held busy by a request
    // whose answer blocks its batcher worker until released, so what comes next queues.
    ServiceOptions options = GrpcServe::service_options();
    options.max_queued_images = kMaxBatch;
    GrpcServe serve(*model_, std::nullopt, options);
    std::promise<void> holding, release;
    std::shared_future<void> released = release.get_future().share();
    struct ReleaseOnExit {  // a failed ASSERT must not leave the worker held (stop() would wait for it)
        std::promise<void>& release;
        ~ReleaseOnExit() {
            try {
                release.set_value();
            } catch (const std::future_error&) {  // released already
            }
        }
    } release_on_exit{release};
    InferenceRequest held;
    held.batch = 1;
    const std::vector<float> held_pixels = random_images(1, 20);
    held.pixels = serve.service().pool().copy_of(held_pixels.data(), held_pixels.size() * sizeof(float));
    serve.service().infer(std::move(held), [&holding, released](Outcome) {
        holding.set_value();
        released.wait();
    });
    ASSERT_EQ(holding.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
    const auto infer = [&](const std::vector<float>& pixels, int batch, inference::ModelInferResponse* response) {
        return serve.stub().ModelInfer(context().get(), pixel_request(pixels, batch), response);
    };
    const std::vector<float> three = random_images(3, 21);
    inference::ModelInferResponse three_response;
    grpc::Status three_status;
    std::thread queued([&] { three_status = infer(three, 3, &three_response); });
    for (int wait = 0; wait < 6000 && serve.metrics().render().find("onevit_queued_images 3\n") == std::string::npos;
         ++wait)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_NE(serve.metrics().render().find("onevit_queued_images 3\n"), std::string::npos) << "3 images queued";

    inference::ModelInferResponse over_response;
    const grpc::Status over = infer(random_images(2, 22), 2, &over_response);
    EXPECT_EQ(over.error_code(), grpc::StatusCode::UNAVAILABLE) << over.error_message();
    EXPECT_NE(over.error_message().find("--max-queue"), std::string::npos) << over.error_message();

    // One more image fills the queue; once the stream is free, both are answered, each with its own rows.
    const std::vector<float> one = random_images(1, 23);
    inference::ModelInferResponse one_response;
    grpc::Status one_status;
    std::thread queued_too([&] { one_status = infer(one, 1, &one_response); });
    for (int wait = 0; wait < 6000 && serve.metrics().render().find("onevit_queued_images 4\n") == std::string::npos;
         ++wait)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    release.set_value();
    queued.join();
    queued_too.join();
    ASSERT_TRUE(one_status.ok()) << one_status.error_message();
    ASSERT_TRUE(three_status.ok()) << three_status.error_message();
    EXPECT_EQ(raw_floats(one_response), model_->run(one.data(), 1));
    EXPECT_EQ(raw_floats(three_response), model_->run(three.data(), 3));
}

TEST_F(GrpcServeTest, TheApiKeyGuardsAllButLiveness) {
    GrpcServe serve(*model_, "grpc-key");
    const std::vector<float> pixels = random_images(1, 3);
    inference::ServerLiveResponse live;
    EXPECT_TRUE(serve.stub().ServerLive(context().get(), {}, &live).ok()) << "liveness needs no key";
    inference::ModelInferResponse response;
    for (const char* wrong : {"", "Bearer grpc-kez", "Bearer grpc-key-longer", "grpc-key"}) {
        const grpc::Status status = serve.stub().ModelInfer(context(wrong).get(), pixel_request(pixels, 1), &response);
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << "'" << wrong << "'";
        inference::ServerReadyResponse ready;
        EXPECT_EQ(serve.stub().ServerReady(context(wrong).get(), {}, &ready).error_code(),
                  grpc::StatusCode::UNAUTHENTICATED)
            << "'" << wrong << "'";
    }
    const grpc::Status status =
        serve.stub().ModelInfer(context("Bearer grpc-key").get(), pixel_request(pixels, 1), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(raw_floats(response), model_->run(pixels.data(), 1));
}

}  // namespace
}  // namespace onevit::serve
