// The C API (include/onevit/onevit.h) over the C++ one. Every entry point runs
// its body through `guarded`, which turns each exception into a status code
// and this thread's last error, so that no exception reaches a C caller.
#include "onevit/onevit.h"

#include <algorithm>
#include <exception>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "onevit/error.hpp"
#include "onevit/image.hpp"
#include "onevit/model.hpp"

struct onevit_model {
    onevit::Model model;
};

namespace {

// A caller's mistake (NULL pointer, value out of range): ONEVIT_ERROR_ARGUMENT.
class ArgumentError : public onevit::Error {
public:
    using Error::Error;
};

thread_local std::string last_error_message;
thread_local const char* last_error = "";

// Records "function: message" as this thread's last error and returns status.
int fail(int status, const char* function, const char* message) noexcept {
    try {
        const char* separator = status == ONEVIT_ERROR_INTERNAL ? ": internal error: " : ": ";
        last_error_message = function + std::string(separator) + message;
        last_error = last_error_message.c_str();
        return status;
    } catch (...) {  // no memory even for the message: say so without allocating
        last_error = "out of memory";
        return ONEVIT_ERROR_OUT_OF_MEMORY;
    }
}

// Runs body; turns any exception into its status code and this thread's last error.
template <class F>
int guarded(const char* function, F&& body) noexcept {
    try {
        body();
        return ONEVIT_OK;
    } catch (const ArgumentError& e) {
        return fail(ONEVIT_ERROR_ARGUMENT, function, e.what());
    } catch (const onevit::Error& e) {
        return fail(ONEVIT_ERROR_FAILED, function, e.what());
    } catch (const std::bad_alloc&) {
        return fail(ONEVIT_ERROR_OUT_OF_MEMORY, function, "out of memory");
    } catch (const std::exception& e) {
        return fail(ONEVIT_ERROR_INTERNAL, function, e.what());
    } catch (...) {
        return fail(ONEVIT_ERROR_INTERNAL, function, "unknown exception");
    }
}

void require(bool condition, const std::string& message) {
    if (!condition) throw ArgumentError(message);
}

void require_model(const onevit_model* model) { require(model != nullptr, "model is NULL"); }

// The arguments of a run: a model, input, a batch of at least one, and the output buffer `out_name`.
void require_run(const onevit_model* model, const float* input, int batch, const float* out, const char* out_name) {
    require_model(model);
    require(input != nullptr, "input is NULL");
    require(out != nullptr, std::string(out_name) + " is NULL");
    require(batch >= 1, "batch must be >= 1, got " + std::to_string(batch));
}

onevit::Options to_options(const onevit_options& options) {
    require(options.threads >= 0,
            "options->threads must be >= 0 (0 = chosen per model), got " + std::to_string(options.threads));
    require(options.streams >= 0,
            "options->streams must be >= 0 (0 = chosen for the hint), got " + std::to_string(options.streams));
    require(options.hint == 0 || options.hint == 1,
            "options->hint must be 0 (latency) or 1 (throughput), got " + std::to_string(options.hint));
    onevit::Options converted;
    converted.threads = options.threads;
    converted.streams = options.streams;
    converted.hint = options.hint == 0 ? onevit::Hint::latency : onevit::Hint::throughput;
    return converted;
}

}  // namespace

extern "C" {

int onevit_model_load(const char* path, const onevit_options* options, onevit_model** out) {
    return guarded(__func__, [&] {
        require(out != nullptr, "out is NULL");
        *out = nullptr;
        require(path != nullptr, "path is NULL");
        const onevit::Options converted = options ? to_options(*options) : onevit::Options{};
        *out = new onevit_model{onevit::Model::load(path, converted)};
    });
}

void onevit_model_free(onevit_model* model) { delete model; }

int onevit_model_input_shape(const onevit_model* model, int* channels, int* height, int* width) {
    return guarded(__func__, [&] {
        require_model(model);
        const onevit::Architecture& arch = model->model.info().arch;
        if (channels) *channels = arch.channels;
        if (height) *height = arch.image_height;
        if (width) *width = arch.image_width;
    });
}

int onevit_model_num_classes(const onevit_model* model) {
    int classes = -1;
    guarded(__func__, [&] {
        require_model(model);
        classes = model->model.info().arch.num_classes;
    });
    return classes;
}

int onevit_model_run(const onevit_model* model, const float* input, int batch, float* logits) {
    return guarded(__func__, [&] {
        require_run(model, input, batch, logits, "logits");
        require(model->model.info().arch.num_classes > 0,
                "the model has no classifier (num_classes 0): use onevit_model_embed");
        const std::vector<float> result = model->model.run(input, batch);
        std::copy(result.begin(), result.end(), logits);
    });
}

int onevit_model_embedding_size(const onevit_model* model) {
    int dim = -1;
    guarded(__func__, [&] {
        require_model(model);
        dim = model->model.info().arch.embed_dim();
    });
    return dim;
}

int onevit_model_embed(const onevit_model* model, const float* input, int batch, float* embedding) {
    return guarded(__func__, [&] {
        require_run(model, input, batch, embedding, "embedding");
        onevit::Features features;
        model->model.run(input, batch, &features);
        std::copy(features.embedding.begin(), features.embedding.end(), embedding);
    });
}

int onevit_model_classify_file(const onevit_model* model, const char* image_path, int top_k,
                               onevit_prediction* out) {
    return guarded(__func__, [&] {
        require_model(model);
        require(image_path != nullptr, "image_path is NULL");
        require(out != nullptr, "out is NULL");
        require(top_k >= 1, "top_k must be >= 1, got " + std::to_string(top_k));
        const onevit::ModelInfo& info = model->model.info();
        const onevit::Image image = onevit::decode_image(image_path, info.arch.channels);
        const std::vector<onevit::Prediction> top = model->model.classify(image, top_k);
        for (int rank = 0; rank < top_k; ++rank) {
            if (rank >= static_cast<int>(top.size())) {
                out[rank] = {-1, 0.f, ""};
                continue;
            }
            const onevit::Prediction& p = top[rank];
            out[rank] = {p.index, p.prob, info.labels.empty() ? "" : info.labels[p.index].c_str()};
        }
    });
}

const char* onevit_last_error(void) { return last_error; }

}  // extern "C"
