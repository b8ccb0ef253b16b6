#include "onevit/model.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>

#include "executor.hpp"
#include "model_file.hpp"
#include "onevit/error.hpp"
#include "vit.hpp"

namespace onevit {

namespace {

// oneDNN reports failures as dnnl::error; the API promises onevit::Error.
template <class F>
auto translating_dnnl_errors(const std::string& context, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const dnnl::error& e) {
        throw Error(context + ": oneDNN: " + e.what());
    }
}

}  // namespace

struct Model::Impl {
    ModelFile file;  // first: the weights below point into its mapping
    Executor executor;
    VitWeights weights;

    std::mutex mutex;
    std::map<int, std::vector<std::unique_ptr<Forward>>> idle;  // by batch size

    Impl(ModelFile f, const Options& options)
        : file(std::move(f)),
          executor(dnnl::engine(dnnl::engine::kind::cpu, 0), options.threads),
          weights(inside_arena([&] { return VitWeights(file, executor); })) {}

    // Primitives must be created inside the arena (Executor::require_inside_run).
    template <class Make>
    auto inside_arena(Make&& make) -> decltype(make()) {
        std::optional<decltype(make())> made;
        executor.run([&] { made.emplace(make()); });
        return std::move(*made);
    }

    // A Forward for this batch size that no other thread is using.
    std::unique_ptr<Forward> acquire(int batch) {
        {
            std::lock_guard<std::mutex> lock(mutex);
            auto& pool = idle[batch];
            if (!pool.empty()) {
                auto forward = std::move(pool.back());
                pool.pop_back();
                return forward;
            }
        }
        return inside_arena([&] { return std::make_unique<Forward>(weights, executor, batch); });
    }
    void release(std::unique_ptr<Forward> forward) {
        std::lock_guard<std::mutex> lock(mutex);
        idle[forward->batch()].push_back(std::move(forward));
    }
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& path, const Options& options) {
    if (options.threads < 0) throw Error("threads must be >= 0 (0 = all cores), got " + std::to_string(options.threads));
    ModelFile file = ModelFile::open(path);
    return translating_dnnl_errors(path, [&] { return Model(std::make_unique<Impl>(std::move(file), options)); });
}

const ModelInfo& Model::info() const { return impl_->file.info(); }

void Model::verify() const { impl_->file.verify_data(); }

std::vector<float> Model::run(const float* input, int batch, Features* features) const {
    if (batch < 1) throw Error("batch must be >= 1, got " + std::to_string(batch));
    if (!input) throw Error("input is null");
    std::vector<float> logits(std::size_t(batch) * info().arch.num_classes);
    translating_dnnl_errors(impl_->file.path(), [&] {
        std::unique_ptr<Forward> forward = impl_->acquire(batch);
        impl_->executor.run([&] { forward->run(impl_->executor, input, logits.data(), features); });
        impl_->release(std::move(forward));
    });
    return logits;
}

std::vector<std::vector<Prediction>> Model::classify(const std::vector<Image>& images, int k) const {
    const ModelInfo& i = info();
    if (images.empty()) return {};
    std::vector<float> input;
    for (const Image& image : images) {
        const std::vector<float> chw = preprocess(image, i.arch, i.preprocess);
        input.insert(input.end(), chw.begin(), chw.end());
    }
    const std::vector<float> logits = run(input.data(), static_cast<int>(images.size()));
    std::vector<std::vector<Prediction>> out;
    for (std::size_t b = 0; b < images.size(); ++b)
        out.push_back(top_k(logits.data() + b * i.arch.num_classes, i.arch.num_classes, k, i.labels));
    return out;
}

std::vector<Prediction> top_k(const float* logits, int num_classes, int k, const std::vector<std::string>& labels) {
    if (k < 1) throw Error("top-k must be >= 1, got " + std::to_string(k));
    k = std::min(k, num_classes);
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
