// `onevit eval`: top-1/top-5 accuracy of a model on labelled images, at one
// precision, and how often its top-1 agrees with another precision's.
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "class_labels.hpp"
#include "commands.hpp"
#include "image_files.hpp"
#include "onevit/error.hpp"
#include "onevit/image.hpp"
#include "onevit/model.hpp"

namespace onevit::cli {

namespace {

namespace fs = std::filesystem;

// Images decoded and run together: big enough to batch the matmuls, small
// enough that decoded full-size photos do not pile up in memory.
constexpr std::size_t kImagesPerBatch = 8;
constexpr int kTop5 = 5;

struct EvalOptions {
    std::string model_path;
    std::string precision = "f32";
    std::string against;
    std::string synsets;
    bool top5 = false;
    bool json = false;
    std::vector<std::string> inputs;
};

// Hits of one precision over the images evaluated so far.
struct Score {
    Precision precision;
    int top1 = 0;
    int top5 = 0;
};

struct Tally {
    int evaluated = 0;
    int failed = 0;
    int agreed = 0;  // top-1 equal at both precisions (with --against)
};

// Where a synset_words.txt beside the images would be: each directory named,
// or the folder of each file named.
std::vector<std::string> synset_search_dirs(const std::vector<std::string>& inputs) {
    std::vector<std::string> dirs;
    for (const std::string& input : inputs) {
        std::error_code error;
        dirs.push_back(fs::is_directory(input, error) ? input : fs::path(input).parent_path().string());
    }
    return dirs;
}

void report_failure(const std::string& message, Tally& tally) {
    std::fflush(stdout);  // keep stdout and stderr in order on a terminal
    fmt::print(stderr, "onevit: error: {}\n", message);
    ++tally.failed;
}

// The top-k class indices of each image's logits, most probable first.
std::vector<std::vector<int>> ranked(const Model& model, const std::vector<float>& input, int batch, int k) {
    const ModelInfo& info = model.info();
    const std::vector<float> logits = model.run(input.data(), batch);
    std::vector<std::vector<int>> out;
    for (int b = 0; b < batch; ++b) {
        std::vector<int> indices;
        for (const Prediction& p : top_k(logits.data() + std::size_t(b) * info.arch.num_classes, info.arch.num_classes,
                                         k, info.labels))
            indices.push_back(p.index);
        out.push_back(std::move(indices));
    }
    return out;
}

// Decodes, preprocesses and runs one batch on every model (the first is the
// one evaluated, the second, if any, the one it is compared with).
void eval_batch(const std::vector<const Model*>& models, std::vector<Score>& scores, const ClassLabels& labels,
                const std::vector<std::string>& images, Tally& tally) {
    const ModelInfo& info = models[0]->info();
    std::vector<float> input;
    std::vector<int> truth;
    for (const std::string& path : images) {
        try {
            const int label = labels.of(path);
            const std::vector<float> pixels =
                preprocess(decode_image(path, info.arch.channels), info.arch, info.preprocess);
            input.insert(input.end(), pixels.begin(), pixels.end());
            truth.push_back(label);
        } catch (const Error& e) {
            report_failure(e.what(), tally);
        }
    }
    const int batch = static_cast<int>(truth.size());
    if (batch == 0) return;
    const int k = std::min(kTop5, info.arch.num_classes);
    std::vector<std::vector<std::vector<int>>> top;  // [model][image][rank]
    for (std::size_t m = 0; m < models.size(); ++m) {
        top.push_back(ranked(*models[m], input, batch, k));
        for (int i = 0; i < batch; ++i) {
            const std::vector<int>& r = top[m][i];
            scores[m].top1 += r[0] == truth[i];
            scores[m].top5 += std::find(r.begin(), r.end(), truth[i]) != r.end();
        }
    }
    for (int i = 0; models.size() > 1 && i < batch; ++i) tally.agreed += top[0][i][0] == top[1][i][0];
    tally.evaluated += batch;
}

double fraction(int count, int of) { return of ? double(count) / of : 0.0; }

void print_text(const EvalOptions& options, const std::vector<Score>& scores, const Tally& tally,
                const std::string& synsets) {
    fmt::print("model       {}\n", options.model_path);
    fmt::print("labels      {}\n", synsets.empty() ? "folders named after the model's labels" : "WordNet ids in " + synsets);
    fmt::print("images      {} evaluated, {} failed\n", tally.evaluated, tally.failed);
    const auto hits = [&](int count) {
        return fmt::format("{:6.2f}% ({}/{})", 100 * fraction(count, tally.evaluated), count, tally.evaluated);
    };
    fmt::print("precision   {}\n", options.top5 ? fmt::format("{:<24}top-5", "top-1") : "top-1");
    for (const Score& s : scores) {
        const std::string top1 = hits(s.top1);
        fmt::print("{:<11} {}\n", to_string(s.precision),
                   options.top5 ? fmt::format("{:<24}{}", top1, hits(s.top5)) : top1);
    }
    if (scores.size() > 1)
        fmt::print("agreement   {:6.2f}% ({}/{}) of top-1 classes equal at {} and {}\n",
                   100 * fraction(tally.agreed, tally.evaluated), tally.agreed, tally.evaluated,
                   to_string(scores[0].precision), to_string(scores[1].precision));
}

nlohmann::ordered_json score_json(const Score& s, const Tally& tally, bool top5) {
    nlohmann::ordered_json j = {{"precision", to_string(s.precision)}, {"top1", fraction(s.top1, tally.evaluated)}};
    if (top5) j["top5"] = fraction(s.top5, tally.evaluated);
    return j;
}

// {"model": "m.ovit", "images": 250, "failed": 0, "precision": "int8", "top1": 0.828, ["top5": 0.952,]
//  ["against": {"precision": "f32", "top1": 0.832, ["top5": 0.952,] "agreement": 0.98}]}
void print_json(const EvalOptions& options, const std::vector<Score>& scores, const Tally& tally) {
    nlohmann::ordered_json j = {{"model", options.model_path}, {"images", tally.evaluated}, {"failed", tally.failed}};
    j.update(score_json(scores[0], tally, options.top5));
    if (scores.size() > 1) {
        nlohmann::ordered_json against = score_json(scores[1], tally, options.top5);
        against["agreement"] = fraction(tally.agreed, tally.evaluated);
        j["against"] = against;
    }
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

void eval(const EvalOptions& options) {
    const std::vector<std::string> images = expand_image_inputs(options.inputs, /*recursive=*/true);
    std::vector<Score> scores = {{parse_precision(options.precision)}};
    if (!options.against.empty()) scores.push_back({parse_precision(options.against)});

    std::vector<Model> models;
    for (const Score& s : scores) {
        Options model_options;
        model_options.precision = s.precision;
        models.push_back(Model::load(options.model_path, model_options));
    }
    const ClassLabels labels(models[0].info(), options.synsets, synset_search_dirs(options.inputs));
    // Without a synset list, every image named by WordNet id would fail alike: say it once.
    if (labels.synsets_source().empty())
        for (const std::string& path : images)
            if (wordnet_id_of(path))
                throw Error(path + " is named by WordNet id, but there is no synset list (give --synsets FILE, or put "
                            "synset_words.txt beside the images)");

    std::vector<const Model*> running;
    for (const Model& m : models) running.push_back(&m);
    Tally tally;
    for (std::size_t first = 0; first < images.size(); first += kImagesPerBatch) {
        const auto begin = images.begin() + static_cast<std::ptrdiff_t>(first);
        const auto end = images.begin() + static_cast<std::ptrdiff_t>(std::min(first + kImagesPerBatch, images.size()));
        eval_batch(running, scores, labels, std::vector<std::string>(begin, end), tally);
    }
    if (tally.evaluated == 0) throw Error("no image could be evaluated");
    if (options.json)
        print_json(options, scores, tally);
    else
        print_text(options, scores, tally, labels.synsets_source());
    // Each failure is already on stderr: exit 1 without another message.
    if (tally.failed) throw CLI::RuntimeError(1);
}

}  // namespace

void add_eval_command(CLI::App& app) {
    CLI::App* command =
        app.add_subcommand("eval", "Accuracy on labelled images (top-1/top-5), and agreement with another precision");
    auto options = std::make_shared<EvalOptions>();
    command->add_option("--model,-m", options->model_path, "Model file (.ovit)")->required();
    command->add_option("--precision,-p", options->precision, "Precision to evaluate: f32, bf16 or int8")
        ->capture_default_str();
    command->add_option("--against", options->against,
                        "Also run this precision and report how often the top-1 classes agree");
    command->add_flag("--top5", options->top5, "Report top-5 accuracy too");
    command->add_option("--synsets", options->synsets,
                        "Synset list: line i = 'WordNet-id name' of class i (default: synset_words.txt beside the "
                        "images, else the model's labels if they start with WordNet ids)");
    command->add_flag("--json", options->json, "One JSON object instead of text");
    command->add_option("images", options->inputs,
                        "Directories (searched recursively) or image files; the class of each comes from a WordNet id "
                        "prefix (n01440764_x.JPEG), a WordNet-id folder, or a folder named after a label")
        ->required();
    command->callback([options] { eval(*options); });
}

}  // namespace onevit::cli
