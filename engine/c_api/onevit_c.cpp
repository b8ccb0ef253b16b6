// The C API (include/onevit/onevit.h) over the C++ one. Every entry point runs
// its body through `guarded`, which turns each exception into a status code
// and this thread's last error, so that no exception reaches a C caller.
#include "onevit/onevit.h"

#include <algorithm>
#include <climits>
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

// The options of a struct_size this library knows (its own; a later version,
// having appended fields, takes this size too and defaults what it lacks).
onevit::Options to_options(const onevit_load_options& options) {
    require(options.struct_size == sizeof(onevit_load_options),
            "options->struct_size is " + std::to_string(options.struct_size) + ", this libonevit takes " +
                std::to_string(sizeof(onevit_load_options)) +
                " (sizeof(onevit_load_options): start from ONEVIT_LOAD_OPTIONS_INIT)");
    require(options.threads >= 0,
            "options->threads must be >= 0 (0 = chosen per model), got " + std::to_string(options.threads));
    require(options.streams >= 0,
            "options->streams must be >= 0 (0 = chosen for the hint), got " + std::to_string(options.streams));
    require(options.hint == ONEVIT_HINT_LATENCY || options.hint == ONEVIT_HINT_THROUGHPUT,
            "options->hint must be 0 (latency) or 1 (throughput), got " + std::to_string(options.hint));
    require(options.batch >= 0, "options->batch must be >= 0 (0 = 1), got " + std::to_string(options.batch));
    onevit::Options converted;
    converted.threads = options.threads;
    converted.streams = options.streams;
    converted.hint = options.hint == ONEVIT_HINT_LATENCY ? onevit::Hint::latency : onevit::Hint::throughput;
    converted.batch = options.batch > 0 ? options.batch : 1;
    if (options.precision) {
        try {
            converted.precision = onevit::parse_precision(options.precision);
        } catch (const onevit::Error& e) {
            throw ArgumentError(std::string("options->precision: ") + e.what());
        }
    }
    return converted;
}

onevit_load_options from_original(const onevit_options& options) {
    onevit_load_options converted = ONEVIT_LOAD_OPTIONS_INIT;
    converted.threads = options.threads;
    converted.streams = options.streams;
    converted.hint = options.hint;
    return converted;
}

// *out = a model loaded with the options `convert` gives (checked after out and path), or NULL.
template <class Convert>
void load_model(const char* path, onevit_model** out, Convert&& convert) {
    require(out != nullptr, "out is NULL");
    *out = nullptr;
    require(path != nullptr, "path is NULL");
    const onevit::Options options = convert();
    *out = new onevit_model{onevit::Model::load(path, options)};
}

// A getter: value(model->model), or `fallback` (with the last error set)
// when model is NULL or value throws.
template <class T, class F>
T get(const char* function, const onevit_model* model, T fallback, F&& value) {
    T result = fallback;
    guarded(function, [&] {
        require_model(model);
        result = value(model->model);
    });
    return result;
}

}  // namespace

extern "C" {

int onevit_model_load_with_options(const char* path, const onevit_load_options* options, onevit_model** out) {
    return guarded(__func__,
                   [&] { load_model(path, out, [&] { return options ? to_options(*options) : onevit::Options{}; }); });
}

int onevit_model_load(const char* path, const onevit_options* options, onevit_model** out) {
    return guarded(__func__, [&] {
        load_model(path, out, [&] { return options ? to_options(from_original(*options)) : onevit::Options{}; });
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
    return get(__func__, model, -1, [](const onevit::Model& m) { return m.info().arch.num_classes; });
}

const char* onevit_model_precision(const onevit_model* model) {
    return get<const char*>(__func__, model, nullptr,
                            [](const onevit::Model& m) { return onevit::to_string(m.precision()); });
}

int onevit_model_threads(const onevit_model* model) {
    return get(__func__, model, -1, [](const onevit::Model& m) { return m.threads(); });
}

int onevit_model_streams(const onevit_model* model) {
    return get(__func__, model, -1, [](const onevit::Model& m) { return m.streams(); });
}

int onevit_model_output_size(const onevit_model* model) {
    return get(__func__, model, -1, [](const onevit::Model& m) { return m.info().arch.outputs(); });
}

int onevit_model_run(const onevit_model* model, const float* input, int batch, float* logits) {
    return guarded(__func__, [&] {
        require_run(model, input, batch, logits, "logits");
        require(model->model.info().arch.num_classes > 0,
                "the model has no classifier (num_classes 0): use onevit_model_embed");
        model->model.run_into(input, batch, logits);
    });
}

int onevit_model_run_into(const onevit_model* model, const float* input, size_t input_count, float* output,
                          size_t output_capacity) {
    return guarded(__func__, [&] {
        require_model(model);
        require(input != nullptr, "input is NULL");
        require(output != nullptr, "output is NULL");
        const onevit::Architecture& arch = model->model.info().arch;
        const std::size_t image = std::size_t(arch.channels) * arch.image_height * arch.image_width;
        require(input_count > 0 && input_count % image == 0,
                "input_count must be a positive multiple of C x H x W = " + std::to_string(image) + " floats, got " +
                    std::to_string(input_count));
        require(input_count / image <= INT_MAX, "input_count holds more than INT_MAX images");
        const int batch = static_cast<int>(input_count / image);
        const std::size_t needed = std::size_t(batch) * arch.outputs();
        require(output_capacity >= needed, "output holds " + std::to_string(output_capacity) + " floats, " +
                                               std::to_string(batch) + " images need " + std::to_string(needed));
        model->model.run_into(input, batch, output);
    });
}

int onevit_model_embedding_size(const onevit_model* model) {
    return get(__func__, model, -1, [](const onevit::Model& m) { return m.info().arch.embed_dim(); });
}

int onevit_model_embed(const onevit_model* model, const float* input, int batch, float* embedding) {
    return guarded(__func__, [&] {
        require_run(model, input, batch, embedding, "embedding");
        onevit::Features features;
        model->model.run(input, batch, &features);
        std::copy(features.embedding.begin(), features.embedding.end(), embedding);
    });
}

int onevit_model_classify_file(const onevit_model* model, const char* image_path, int top_k, onevit_prediction* out) {
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
