// What the transports serve, as it changes over the server's life: the model's
// name from the start (so requests for another model get a 404 at once), the
// model and its service once loaded and warmed (then ready), not ready again
// once stopping.
#pragma once

#include <atomic>
#include <string>

#include "api_key.hpp"
#include "inference_service.hpp"
#include "model_spec.hpp"

namespace onevit::serve {

struct Backend {
    const ModelSpec& spec;
    InferenceService& service;
};

class ServingState {
public:
    ServingState(std::string model_name, const ApiKey* api_key)
        : model_name_(std::move(model_name)), api_key_(api_key) {}

    const std::string& model_name() const { return model_name_; }
    const ApiKey* api_key() const { return api_key_; }  // null: no key required

    // The loaded model, or null while loading. Outlives the transports.
    const Backend* backend() const { return backend_.load(); }
    bool ready() const { return ready_.load(); }

    void set_ready(const Backend* backend) {
        backend_.store(backend);
        ready_.store(true);
    }
    void set_stopping() { ready_.store(false); }

private:
    const std::string model_name_;
    const ApiKey* const api_key_;
    std::atomic<const Backend*> backend_{nullptr};
    std::atomic<bool> ready_{false};
};

}  // namespace onevit::serve
