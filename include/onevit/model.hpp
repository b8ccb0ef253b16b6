// A loaded ViT: weights prepared once, then run any number of times, from any
// number of threads at once.
#pragma once

#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "onevit/error.hpp"
#include "onevit/image.hpp"
#include "onevit/model_info.hpp"

namespace onevit {

// What to optimise for. latency: one stream using every thread, for one request
// at a time. throughput: several streams, each running whole requests, for
// many requests at once (concurrent callers or submit()).
enum class Hint { latency, throughput };

// A precision by name: "f32", "bf16", "int8", or "auto" (fastest_native_precision()).
// Throws onevit::Error naming the choices otherwise. The CLI's --precision, Python's
// Model(precision=...) and the C API's options all go through it.
Precision parse_precision(const std::string& name);
// The fastest precision this CPU runs natively (as oneDNN reports its ISA)
// within onevit's accuracy targets: int8 with VNNI, else f32.
Precision fastest_native_precision();

// Threads and streams left at 0 are chosen per model by a cost model of its
// forward pass, for batches of `batch` images (a small ViT gains little from
// many cores); explicit values win.
struct Options {
    int threads = 0;  // threads in all; 0 = chosen per model (at most all cores)
    int streams = 0;  // 0 = chosen for the hint (latency: one)
    Hint hint = Hint::latency;
    // Unset: the precision the file was written for (ModelInfo::stored_precision),
    // so an int8 or bf16 file runs at int8 or bf16 and an f32 file at f32.
    std::optional<Precision> precision = std::nullopt;
    int batch = 1;  // the batch size threads and streams are chosen for
};

// The transformer's output tokens, after the final LayerNorm (after the last
// block where the model has none), and the image embedding.
struct Features {
    std::vector<float> class_token;   // batch × dim: token 0; empty when the model has no class token
    std::vector<float> patch_tokens;  // batch × patches × dim: the tokens after the prefix tokens
    // batch × arch.embed_dim(): the pooled vector after the head norm and pool_proj, the
    // classifier's input (timm's forward_head(pre_logits=True); distilled: the mean of both tokens).
    std::vector<float> embedding;
};

// Every block's attention probabilities, softmax(scale · q kᵀ) of each head,
// as attention rollout (onevit/rollout.hpp) reads them. A run fills them only
// when asked: otherwise it copies nothing.
struct AttentionMaps {
    int depth = 0;
    int heads = 0;
    int tokens = 0;            // prefix tokens first, then the patches row by row
    std::vector<float> probs;  // batch × depth × heads × tokens (queries) × tokens (keys)
};

struct Prediction {
    int index = 0;
    std::string label;  // empty when the model file has no labels
    float prob = 0.f;
};

class Model {
public:
    // Maps and validates the file, prepares the weights. Throws onevit::Error.
    static Model load(const std::string& path, const Options& options = {});

    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;
    ~Model();

    const ModelInfo& info() const;

    // Checks the checksum of all tensor data (loading checks only the header's,
    // since hashing every weight would cost more than the load itself).
    void verify() const;

    // Plans these batch sizes on every stream now (primitives, activation
    // buffers), so that no run of them pays for planning, and keeps them for
    // the model's lifetime. Other batch sizes are planned on first use and kept
    // while among the 4 most recently used of their stream.
    void plan(const std::vector<int>& batch_sizes) const;

    int streams() const;
    int threads() const;
    // The precision the model computes in (Options::precision, or the file's).
    Precision precision() const;

    // input: batch × C × H × W floats (the model's input size, preprocessed);
    // returns batch × num_classes logits, row-major (a model without a classifier,
    // num_classes 0: its batch × arch.embed_dim() embeddings); fills features and attention if given.
    std::vector<float> run(const float* input, int batch, Features* features = nullptr,
                           AttentionMaps* attention = nullptr) const;
    // run() into the caller's memory: output receives the batch × info().arch.outputs()
    // floats (it must hold them); no result is allocated.
    void run_into(const float* input, int batch, float* output, Features* features = nullptr,
                  AttentionMaps* attention = nullptr) const;

    // Queues a run on the least busy stream and returns at once. input must stay
    // valid until the future is ready; errors arrive through the future.
    std::future<std::vector<float>> submit(const float* input, int batch) const;
    // run() on the calling thread, if a stream is idle (nothing queued or running
    // on it): no stream thread to wake, for a caller that would only wait (onevit
    // serve's lone requests). Empty, having run nothing, when every stream is busy.
    std::optional<std::vector<float>> run_here_if_idle(const float* input, int batch) const;

    // A decoded image → preprocessing → its top_k classes, most probable first.
    // The result is a value of its own (labels included): keep it as long as you like.
    std::vector<Prediction> classify(const Image& image, int top_k) const;
    // Decoded images → preprocessing → one batch → the top_k classes of each.
    std::vector<std::vector<Prediction>> classify(const std::vector<Image>& images, int top_k) const;

    // A decoded image → preprocessing → its embedding (Features::embedding):
    // arch.embed_dim() floats, scaled to unit L2 norm if `normalize`.
    std::vector<float> embed(const Image& image, bool normalize = false) const;
    // Decoded images → preprocessing → one batch → each image's embedding:
    // images.size() × arch.embed_dim() floats, row-major, each row as embed(image) gives it.
    std::vector<float> embed(const std::vector<Image>& images, bool normalize = false) const;

private:
    struct Impl;
    explicit Model(std::unique_ptr<Impl>);
    std::unique_ptr<Impl> impl_;
};

// Softmax over one row of logits, then the top_k entries, most probable first.
std::vector<Prediction> top_k(const float* logits, int num_classes, int k, const std::vector<std::string>& labels);

}  // namespace onevit
