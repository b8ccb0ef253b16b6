#include "onevit/model.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>

#include <oneapi/tbb/info.h>

#include "model/forward_pool.hpp"
#include "model/open_model_file.hpp"
#include "model/vit.hpp"
#include "onevit/error.hpp"
#include "model/thread_plan.hpp"
#include "runtime/dnnl_errors.hpp"
#include "runtime/stream.hpp"

namespace onevit {

namespace {

// How many streams, of how many threads each.
struct StreamPlan {
    int streams;
    std::vector<Range> threads;  // per stream
};

// Explicit threads and streams win; what they leave open, the cost model
// chooses for this model, options.batch and the precision it runs at (model/thread_plan.hpp).
StreamPlan plan_streams(const Options& options, const Architecture& arch, Precision precision) {
    const int threads = options.threads > 0 ? options.threads : available_cores();
    if (options.threads == 0 || (options.streams == 0 && options.hint == Hint::throughput)) {
        const ThreadPlan chosen =
            choose_thread_plan(arch, options.batch, options.hint, threads, options.streams, precision);
        return {chosen.streams, std::vector<Range>(chosen.streams, Range{0, chosen.threads_per_stream})};
    }
    const int streams = options.streams > 0 ? options.streams : 1;
    if (streams > threads)
        throw Error(std::to_string(streams) + " streams need at least as many threads, got " + std::to_string(threads));
    return {streams, split_evenly(threads, streams)};
}

}  // namespace

struct Model::Impl {
    ModelFile file;  // first: the weights below point into its mapping
    std::vector<std::unique_ptr<Stream>> streams;
    VitWeights weights;  // shared by every stream

    std::vector<ForwardPool> pools;  // by stream
    Precision precision;

    Impl(ModelFile f, const StreamPlan& plan, Precision p)
        : file(std::move(f)),
          streams(make_streams(plan)),
          weights(build_weights(plan, p)),
          pools(streams.size()),
          precision(p) {}

    // The streams' threads run jobs that use everything else here: stop them first.
    ~Impl() { streams.clear(); }

    static std::vector<std::unique_ptr<Stream>> make_streams(const StreamPlan& plan) {
        const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
        std::vector<std::unique_ptr<Stream>> made;
        for (Range threads : plan.threads) made.push_back(std::make_unique<Stream>(engine, threads.size));
        return made;
    }

    // On every thread of every stream (they are idle until the model is
    // built), for the first stream's thread count; inside an arena, as every
    // primitive must be created (Executor::require_inside_run).
    VitWeights build_weights(const StreamPlan& plan, Precision precision) {
        int threads = 0;
        for (Range stream_threads : plan.threads) threads += stream_threads.size;
        Executor loader(streams.front()->executor().engine(), threads);
        std::optional<VitWeights> built;
        loader.run([&] { built.emplace(file, loader, plan.threads.front().size, precision); });
        return std::move(*built);
    }

    int least_busy_stream() const {
        int best = 0;
        for (int s = 1; s < static_cast<int>(streams.size()); ++s)
            if (streams[s]->load() < streams[best]->load()) best = s;
        return best;
    }

    // Runs on stream s's thread, inside its arena: batch × outputs floats into output.
    void run_on(int s, const float* input, int batch, float* output, Features* features, AttentionMaps* attention) {
        Executor& executor = streams[s]->executor();
        std::unique_ptr<Forward> forward = acquire(s, batch);
        forward->run(executor, input, output, features, attention);
        pools[s].give_back(std::move(forward));
    }

    // Stream s's Forward for this batch size: the kept one, or a new plan (on s's thread).
    std::unique_ptr<Forward> acquire(int s, int batch) {
        if (std::unique_ptr<Forward> kept = pools[s].take(batch)) return kept;
        return std::make_unique<Forward>(weights, streams[s]->executor(), batch);
    }

    // Every stream plans these batch sizes now and keeps them.
    void plan(const std::vector<int>& batches) {
        for (int batch : batches)
            if (batch < 1) throw Error("batch must be >= 1, got " + std::to_string(batch));
        std::vector<std::future<void>> done;
        for (int s = 0; s < static_cast<int>(streams.size()); ++s)
            done.push_back(post_to(s, [this, batches](int stream) {
                for (int batch : batches) {
                    pools[stream].pin(batch);
                    pools[stream].give_back(acquire(stream, batch));
                }
            }));
        for (auto& d : done) d.get();
    }

    static void check_request(const float* input, int batch) {
        if (batch < 1) throw Error("batch must be >= 1, got " + std::to_string(batch));
        if (!input) throw Error("input is null");
    }

    // Queues work(s) on stream s; its result, or error, arrives through the future.
    template <class Work>
    auto post_to(int s, Work work) -> std::future<decltype(work(0))> {
        auto task = std::make_shared<std::packaged_task<decltype(work(0))()>>([this, s, work = std::move(work)] {
            return translating_dnnl_errors(file.path(), [&] { return work(s); });
        });
        auto result = task->get_future();
        streams[s]->post([task] { (*task)(); });
        return result;
    }

    template <class Work>
    auto post(Work work) -> std::future<decltype(work(0))> {
        return post_to(least_busy_stream(), std::move(work));
    }

    std::future<std::vector<float>> submit(const float* input, int batch, Features* features,
                                           AttentionMaps* attention) {
        check_request(input, batch);
        const std::size_t size = std::size_t(batch) * file.info().arch.outputs();
        return post([=](int s) {
            std::vector<float> output(size);
            run_on(s, input, batch, output.data(), features, attention);
            return output;
        });
    }

    std::optional<std::vector<float>> run_here_if_idle(const float* input, int batch) {
        check_request(input, batch);
        std::optional<std::vector<float>> output;
        for (int s = 0; s < static_cast<int>(streams.size()); ++s) {
            const bool ran = streams[s]->run_here_if_idle([&] {
                output.emplace(std::size_t(batch) * file.info().arch.outputs());
                translating_dnnl_errors(file.path(),
                                        [&] { run_on(s, input, batch, output->data(), nullptr, nullptr); });
            });
            if (ran) return output;
        }
        return std::nullopt;
    }

    std::future<void> submit_into(const float* input, int batch, float* output, Features* features,
                                  AttentionMaps* attention) {
        check_request(input, batch);
        if (!output) throw Error("output is null");
        return post([=](int s) { run_on(s, input, batch, output, features, attention); });
    }
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Precision parse_precision(const std::string& name) {
    for (Precision p : {Precision::f32, Precision::bf16, Precision::int8})
        if (name == to_string(p)) return p;
    if (name == "auto") return fastest_native_precision();
    throw Error("unknown precision '" + name + "' (expected f32, bf16, int8 or auto)");
}

Model Model::load(const std::string& path, const Options& options) {
    if (options.threads < 0)
        throw Error("threads must be >= 0 (0 = chosen per model), got " + std::to_string(options.threads));
    if (options.streams < 0)
        throw Error("streams must be >= 0 (0 = chosen for the hint), got " + std::to_string(options.streams));
    if (options.batch < 1) throw Error("batch must be >= 1, got " + std::to_string(options.batch));
    ModelFile file = open_model_file(path);
    const Precision precision = options.precision.value_or(file.info().stored_precision);
    const StreamPlan plan = plan_streams(options, file.info().arch, precision);
    return translating_dnnl_errors(path,
                                   [&] { return Model(std::make_unique<Impl>(std::move(file), plan, precision)); });
}

const ModelInfo& Model::info() const { return impl_->file.info(); }

void Model::verify() const { impl_->file.verify_data(); }

void Model::plan(const std::vector<int>& batch_sizes) const { impl_->plan(batch_sizes); }

int Model::streams() const { return static_cast<int>(impl_->streams.size()); }

Precision Model::precision() const { return impl_->precision; }

int Model::threads() const {
    int threads = 0;
    for (const auto& stream : impl_->streams) threads += stream->executor().threads();
    return threads;
}

std::vector<float> Model::run(const float* input, int batch, Features* features, AttentionMaps* attention) const {
    return impl_->submit(input, batch, features, attention).get();
}

void Model::run_into(const float* input, int batch, float* output, Features* features, AttentionMaps* attention) const {
    impl_->submit_into(input, batch, output, features, attention).get();
}

std::future<std::vector<float>> Model::submit(const float* input, int batch) const {
    return impl_->submit(input, batch, nullptr, nullptr);
}

std::optional<std::vector<float>> Model::run_here_if_idle(const float* input, int batch) const {
    return impl_->run_here_if_idle(input, batch);
}

namespace {

std::vector<float> preprocess_batch(const std::vector<Image>& images, const ModelInfo& info) {
    std::vector<float> input;
    for (const Image& image : images) {
        const std::vector<float> chw = preprocess(image, info.arch, info.preprocess);
        input.insert(input.end(), chw.begin(), chw.end());
    }
    return input;
}

}  // namespace

std::vector<std::vector<Prediction>> Model::classify(const std::vector<Image>& images, int k) const {
    const ModelInfo& i = info();
    if (i.arch.num_classes == 0)
        throw Error("the model has no classifier (num_classes 0): it gives image embeddings (onevit embed)");
    if (images.empty()) return {};
    const std::vector<float> input = preprocess_batch(images, i);
    const std::vector<float> logits = run(input.data(), static_cast<int>(images.size()));
    std::vector<std::vector<Prediction>> out;
    for (std::size_t b = 0; b < images.size(); ++b)
        out.push_back(top_k(logits.data() + b * i.arch.num_classes, i.arch.num_classes, k, i.labels));
    return out;
}

std::vector<Prediction> Model::classify(const Image& image, int k) const {
    return std::move(classify(std::vector<Image>{image}, k).front());
}

std::vector<float> Model::embed(const Image& image, bool normalize) const {
    return embed(std::vector<Image>{image}, normalize);
}

std::vector<float> Model::embed(const std::vector<Image>& images, bool normalize) const {
    if (images.empty()) return {};
    const std::vector<float> input = preprocess_batch(images, info());
    Features features;
    run(input.data(), static_cast<int>(images.size()), &features);
    std::vector<float>& embedding = features.embedding;
    if (normalize) {
        const std::size_t dim = info().arch.embed_dim();
        for (std::size_t row = 0; row < images.size(); ++row) {
            float* v = embedding.data() + row * dim;
            double squares = 0;
            for (std::size_t i = 0; i < dim; ++i) squares += double(v[i]) * v[i];
            if (squares == 0) continue;  // the zero vector has no direction: left as it is
            const float scale = float(1 / std::sqrt(squares));
            for (std::size_t i = 0; i < dim; ++i) v[i] *= scale;
        }
    }
    return embedding;
}

std::vector<Prediction> top_k(const float* logits, int num_classes, int k, const std::vector<std::string>& labels) {
    if (k < 1) throw Error("top-k must be >= 1, got " + std::to_string(k));
    k = std::min(k, num_classes);
    // Non-finite logits (from non-finite weights) have no ranking: say so.
    for (int c = 0; c < num_classes; ++c)
        if (!std::isfinite(logits[c]))
            throw Error("logit " + std::to_string(c) + " is not finite: the model's weights or input are not finite");
    const float max_logit = *std::max_element(logits, logits + num_classes);
    std::vector<double> probs(num_classes);
    double sum = 0;
    for (int c = 0; c < num_classes; ++c) sum += probs[c] = std::exp(double(logits[c]) - max_logit);
    std::vector<int> order(num_classes);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int a, int b) { return probs[a] > probs[b] || (probs[a] == probs[b] && a < b); });
    std::vector<Prediction> top;
    for (int r = 0; r < k; ++r) {
        const int c = order[r];
        top.push_back({c, labels.empty() ? std::string() : labels[c], float(probs[c] / sum)});
    }
    return top;
}

}  // namespace onevit
