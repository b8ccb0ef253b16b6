#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "decode_ahead.hpp"
#include "image_files.hpp"
#include "image_inputs.hpp"
#include "json_line.hpp"
#include "precision_option.hpp"
#include "onevit/error.hpp"
#include "onevit/model.hpp"
#include "progress.hpp"

namespace onevit::cli {

namespace {

struct ClassifyOptions {
    std::string model_path;
    int top = 5;
    bool json = false;
    std::string precision = "f32";
    std::vector<std::string> inputs;
};

class ResultPrinter {
public:
    ResultPrinter(bool json, Progress& progress) : json_(json), progress_(progress) {}

    void predictions(const std::string& image, const std::vector<Prediction>& predictions) {
        progress_.make_room(stdout);
        if (json_) {
            nlohmann::ordered_json topk = nlohmann::ordered_json::array();
            for (const Prediction& p : predictions)
                topk.push_back({{"index", p.index}, {"label", p.label}, {"prob", shortest_double(p.prob)}});
            fmt::print("{}\n", json_line({{"image", image}, {"topk", topk}}));
            return;
        }
        fmt::print("{}{}\n  rank     prob  index  label\n", first_table_ ? "" : "\n", image);
        first_table_ = false;
        for (std::size_t rank = 0; rank < predictions.size(); ++rank) {
            const Prediction& p = predictions[rank];
            fmt::print("  {:>4}  {:6.2f}%  {:>5}  {}\n", rank + 1, 100.f * p.prob, p.index, p.label);
        }
    }

    void failure(const std::string& image, const std::string& message) {
        progress_.make_room(stderr);
        print_image_failure(image, message, json_);
    }

private:
    bool json_;
    Progress& progress_;
    bool first_table_ = true;
};

// Classifies images [first, end) as one batch (those that decoded), printing in input order.
// Returns whether every image was classified.
bool classify_batch(const Model& model, const std::vector<std::string>& images, std::size_t first, std::size_t end,
                    DecodeAhead& decoded, int top, ResultPrinter& printer) {
    std::vector<DecodeAhead::Input> inputs;
    std::vector<float> batch;
    int count = 0;
    for (std::size_t i = first; i < end; ++i) {
        inputs.push_back(decoded.take(i));
        if (!inputs.back().error.empty()) continue;
        batch.insert(batch.end(), inputs.back().chw.begin(), inputs.back().chw.end());
        ++count;
    }
    const std::vector<float> logits = count ? model.run(batch.data(), count) : std::vector<float>{};

    const ModelInfo& info = model.info();
    const int classes = info.arch.num_classes;
    int row = 0;
    for (std::size_t i = first; i < end; ++i) {
        if (inputs[i - first].error.empty())
            printer.predictions(images[i],
                                top_k(logits.data() + std::size_t(row++) * classes, classes, top, info.labels));
        else
            printer.failure(images[i], inputs[i - first].error);
    }
    return count == static_cast<int>(end - first);
}

// A pipeline: TBB's workers decode the next batch while the model runs this one.
void classify(const ClassifyOptions& options) {
    const std::vector<std::string> images = expand_image_inputs(options.inputs);
    Options model_options;
    model_options.precision = resolve_precision(options.precision);
    const Model model = Model::load(options.model_path, model_options);
    const int top = std::min(options.top, model.info().arch.num_classes);

    Progress progress(images.size());
    ResultPrinter printer(options.json, progress);
    // Decode ahead the next batch, or as many images as the model has threads
    // (so that many cores have enough to do), whichever is more.
    DecodeAhead decoded(images, model.info(), std::max<std::size_t>(kImagesPerBatch, model.threads()));
    progress.show(0);
    bool all_classified = true;
    for (std::size_t first = 0; first < images.size(); first += kImagesPerBatch) {
        const std::size_t end = std::min(first + kImagesPerBatch, images.size());
        all_classified &= classify_batch(model, images, first, end, decoded, top, printer);
        progress.show(end);
    }
    // Each failure is already on stderr: exit 1 without another message.
    if (!all_classified) throw CLI::RuntimeError(1);
}

}  // namespace

void add_classify_command(CLI::App& app) {
    CLI::App* command = app.add_subcommand("classify", "Classify JPEG/PNG images: the top classes of each");
    auto options = std::make_shared<ClassifyOptions>();
    command->add_option("--model,-m", options->model_path, "Model file (.ovit)")->required();
    command->add_option("--top,-k", options->top, "Classes to show per image")
        ->capture_default_str()
        ->check(at_least(1));
    command->add_flag("--json", options->json, "One JSON object per image per line");
    add_precision_option(*command, options->precision);
    command->add_option("images", options->inputs, "Image files, or directories of .jpg/.jpeg/.png files")->required();
    command->callback([options] { classify(*options); });
}

}  // namespace onevit::cli
