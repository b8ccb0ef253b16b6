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
#include "image_batches.hpp"
#include "image_files.hpp"
#include "image_inputs.hpp"
#include "json_line.hpp"
#include "onevit/error.hpp"
#include "onevit/model.hpp"
#include "progress.hpp"
#include "run_options.hpp"

namespace onevit::cli {

namespace {

struct ClassifyOptions {
    std::string model_path;
    int top = 5;
    bool json = false;
    RunOptions run;
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

// A pipeline: TBB's workers decode the next batch while the model runs this one.
void classify(const ClassifyOptions& options) {
    const std::vector<std::string> images = expand_image_inputs(options.inputs);
    const Model model = load_model(options.model_path, options.run);
    require_classifier(model, options.model_path);
    const ModelInfo& info = model.info();
    const int classes = info.arch.num_classes;
    const int top = std::min(options.top, classes);

    Progress progress(images.size());
    ResultPrinter printer(options.json, progress);
    bool all_classified = true;
    for_each_batch(
        model, images, options.run.batch, progress, [&](std::size_t first, std::vector<DecodeAhead::Input>& inputs) {
            const Stacked batch = stack_usable(inputs);
            const std::vector<float> logits =
                batch.count ? model.run(batch.pixels.data(), batch.count) : std::vector<float>{};
            std::size_t row = 0;
            for (std::size_t i = 0; i < inputs.size(); ++i) {
                const std::string& image = images[first + i];
                if (!inputs[i].error.empty()) {
                    printer.failure(image, inputs[i].error);
                    all_classified = false;
                    continue;
                }
                printer.predictions(image, top_k(logits.data() + row++ * classes, classes, top, info.labels));
            }
        });
    // Each failure is already on stderr: exit 1 without another message.
    if (!all_classified) throw CLI::RuntimeError(1);
}

}  // namespace

void add_classify_command(CLI::App& app) {
    CLI::App* command = app.add_subcommand("classify", "Classify images: the top classes of each");
    auto options = std::make_shared<ClassifyOptions>();
    add_model_option(*command, options->model_path);
    add_bounded_option(*command, "--top,-k", options->top, "Classes to show per image", 1);
    command->add_flag("--json", options->json, "One JSON object per image per line");
    add_run_options(*command, options->run);
    command->add_option("images", options->inputs, kImageInputsHelp)->required();
    command->callback([options] { classify(*options); });
}

}  // namespace onevit::cli
