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
#include "eval_results.hpp"
#include "image_batches.hpp"
#include "image_files.hpp"
#include "onevit/error.hpp"
#include "onevit/model.hpp"
#include "progress.hpp"
#include "run_options.hpp"

namespace onevit::cli {

namespace {

namespace fs = std::filesystem;

constexpr int kTop5 = 5;

struct EvalOptions {
    std::string model_path;
    RunOptions run;
    std::string against;
    std::string synsets;
    std::string output;  // per-image results
    bool top5 = false;
    bool per_class = false;
    bool json = false;
    std::vector<std::string> inputs;
};

// Hits of one precision over the images evaluated so far.
struct Score {
    Precision precision;
    int top1 = 0;
    int top5 = 0;
};

// Hits of the evaluated precision on the images of one class.
struct ClassScore {
    int images = 0;
    int top1 = 0;
    int top5 = 0;
};

struct Tally {
    int evaluated = 0;
    int failed = 0;
    int agreed = 0;                     // top-1 equal at both precisions (with --against)
    std::vector<ClassScore> per_class;  // by class index
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

// The top-k class indices of each image's logits, most probable first.
std::vector<std::vector<int>> ranked(const Model& model, const std::vector<float>& input, int batch, int k) {
    const ModelInfo& info = model.info();
    const std::vector<float> logits = model.run(input.data(), batch);
    std::vector<std::vector<int>> out;
    for (int b = 0; b < batch; ++b) {
        std::vector<int> indices;
        for (const Prediction& p :
             top_k(logits.data() + std::size_t(b) * info.arch.num_classes, info.arch.num_classes, k, info.labels))
            indices.push_back(p.index);
        out.push_back(std::move(indices));
    }
    return out;
}

// What eval does with each batch: labels the images, runs the usable ones on
// every model (the first is the one evaluated, the second, if any, the one it
// is compared with), and scores and records each image in input order.
class Evaluation {
public:
    Evaluation(const std::vector<const Model*>& models, const ClassLabels& labels, std::vector<Score>& scores,
               EvalResults& results, Progress& progress)
        : models_(models), labels_(labels), scores_(scores), results_(results), progress_(progress) {
        tally.per_class.resize(static_cast<std::size_t>(models[0]->info().arch.num_classes));
    }

    void batch(const std::vector<std::string>& images, std::vector<DecodeAhead::Input>& inputs) {
        std::vector<int> truth(inputs.size(), -1);
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            if (!inputs[i].error.empty()) continue;
            try {
                truth[i] = labels_.of(images[i]);
            } catch (const Error& e) {
                inputs[i].error = e.what();
            }
        }
        const Stacked usable = stack_usable(inputs);
        const ModelInfo& info = models_[0]->info();
        const int k = std::min(kTop5, info.arch.num_classes);
        std::vector<std::vector<std::vector<int>>> top;  // [model][usable image][rank]
        for (const Model* model : models_)
            top.push_back(usable.count ? ranked(*model, usable.pixels, usable.count, k)
                                       : std::vector<std::vector<int>>{});
        int row = 0;
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            if (!inputs[i].error.empty()) {
                failure(images[i], inputs[i].error);
                continue;
            }
            const int label = truth[i];
            for (std::size_t m = 0; m < models_.size(); ++m) {
                const std::vector<int>& r = top[m][row];
                scores_[m].top1 += r[0] == label;
                scores_[m].top5 += std::find(r.begin(), r.end(), label) != r.end();
            }
            const std::vector<int>& r = top[0][row];
            ClassScore& of_class = tally.per_class[static_cast<std::size_t>(label)];
            ++of_class.images;
            of_class.top1 += r[0] == label;
            of_class.top5 += std::find(r.begin(), r.end(), label) != r.end();
            if (models_.size() > 1) tally.agreed += r[0] == top[1][row][0];
            results_.evaluated(images[i], label, label_name(info, label), r);
            ++tally.evaluated;
            ++row;
        }
    }

    static std::string label_name(const ModelInfo& info, int label) {
        return info.labels.empty() ? std::string() : info.labels[static_cast<std::size_t>(label)];
    }

    Tally tally;

private:
    void failure(const std::string& image, const std::string& message) {
        progress_.make_room(stderr);
        std::fflush(stdout);  // keep stdout and stderr in order on a terminal
        fmt::print(stderr, "onevit: error: {}\n", message);
        results_.failed(image, message);
        ++tally.failed;
    }

    const std::vector<const Model*>& models_;
    const ClassLabels& labels_;
    std::vector<Score>& scores_;
    EvalResults& results_;
    Progress& progress_;
};

double fraction(int count, int of) { return of ? double(count) / of : 0.0; }

void print_text(const EvalOptions& options, const std::vector<Score>& scores, const Tally& tally,
                const std::string& synsets, const ModelInfo& info) {
    fmt::print("model       {}\n", options.model_path);
    fmt::print("labels      {}\n",
               synsets.empty() ? "folders named after the model's labels" : "WordNet ids in " + synsets);
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
    if (!options.per_class) return;
    fmt::print("per class   {:>6}  {:>7}{}  class\n", "images", "top-1", options.top5 ? "    top-5" : "");
    for (std::size_t c = 0; c < tally.per_class.size(); ++c) {
        const ClassScore& s = tally.per_class[c];
        if (s.images == 0) continue;
        const std::string top5 = options.top5 ? fmt::format("  {:6.2f}%", 100 * fraction(s.top5, s.images)) : "";
        fmt::print("  {:>9} {:>6}  {:6.2f}%{}  {}\n", c, s.images, 100 * fraction(s.top1, s.images), top5,
                   Evaluation::label_name(info, static_cast<int>(c)));
    }
}

nlohmann::ordered_json score_json(const Score& s, const Tally& tally, bool top5) {
    nlohmann::ordered_json j = {{"precision", to_string(s.precision)}, {"top1", fraction(s.top1, tally.evaluated)}};
    if (top5) j["top5"] = fraction(s.top5, tally.evaluated);
    return j;
}

// {"model": "m.ovit", "images": 250, "failed": 0, "precision": "int8", "top1": 0.828, ["top5": 0.952,]
//  ["against": {"precision": "f32", "top1": 0.832, ["top5": 0.952,] "agreement": 0.98},]
//  ["per_class": [{"index": 0, "name": "tench", "images": 5, "top1": 0.8, ["top5": 1.0]}, ...]]}
void print_json(const EvalOptions& options, const std::vector<Score>& scores, const Tally& tally,
                const ModelInfo& info) {
    nlohmann::ordered_json j = {{"model", options.model_path}, {"images", tally.evaluated}, {"failed", tally.failed}};
    j.update(score_json(scores[0], tally, options.top5));
    if (scores.size() > 1) {
        nlohmann::ordered_json against = score_json(scores[1], tally, options.top5);
        against["agreement"] = fraction(tally.agreed, tally.evaluated);
        j["against"] = against;
    }
    if (options.per_class) {
        nlohmann::ordered_json classes = nlohmann::ordered_json::array();
        for (std::size_t c = 0; c < tally.per_class.size(); ++c) {
            const ClassScore& s = tally.per_class[c];
            if (s.images == 0) continue;
            nlohmann::ordered_json entry = {{"index", c},
                                            {"name", Evaluation::label_name(info, static_cast<int>(c))},
                                            {"images", s.images},
                                            {"top1", fraction(s.top1, s.images)}};
            if (options.top5) entry["top5"] = fraction(s.top5, s.images);
            classes.push_back(entry);
        }
        j["per_class"] = classes;
    }
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

void eval(const EvalOptions& options) {
    const std::vector<std::string> images = expand_image_inputs(options.inputs);
    if (std::find(images.begin(), images.end(), "-") != images.end())
        throw Error("-: eval takes each image's class from its file or folder name, and the standard input has none");
    std::vector<Model> models;
    models.push_back(load_model(options.model_path, options.run));  // --precision, else the file's
    if (!options.against.empty()) {
        RunOptions run = options.run;
        run.precision = options.against;
        models.push_back(load_model(options.model_path, run));
    }
    std::vector<Score> scores;
    for (const Model& model : models) scores.push_back({model.precision()});
    require_classifier(models[0], options.model_path);
    const ClassLabels labels(models[0].info(), options.synsets, synset_search_dirs(options.inputs));
    // Without a synset list, every image named by WordNet id would fail alike: say it once.
    if (labels.synsets_source().empty())
        for (const std::string& path : images)
            if (wordnet_id_of(path))
                throw Error(path +
                            " is named by WordNet id, but there is no synset list (give --synsets FILE, or put "
                            "synset_words.txt beside the images)");

    std::vector<const Model*> running;
    for (const Model& m : models) running.push_back(&m);
    EvalResults results(options.output);
    Progress progress(images.size());
    Evaluation evaluation(running, labels, scores, results, progress);
    for_each_batch(models[0], images, options.run.batch, progress,
                   [&](std::size_t first, std::vector<DecodeAhead::Input>& inputs) {
                       const auto begin = images.begin() + static_cast<std::ptrdiff_t>(first);
                       const std::vector<std::string> paths(begin, begin + static_cast<std::ptrdiff_t>(inputs.size()));
                       evaluation.batch(paths, inputs);
                   });
    results.close();
    const Tally& tally = evaluation.tally;
    if (tally.evaluated == 0) throw Error("no image could be evaluated");
    if (options.json)
        print_json(options, scores, tally, models[0].info());
    else
        print_text(options, scores, tally, labels.synsets_source(), models[0].info());
    // Each failure is already on stderr: exit 1 without another message.
    if (tally.failed) throw CLI::RuntimeError(1);
}

}  // namespace

void add_eval_command(CLI::App& app) {
    CLI::App* command =
        app.add_subcommand("eval", "Accuracy on labelled images (top-1/top-5), and agreement with another precision");
    auto options = std::make_shared<EvalOptions>();
    add_model_option(*command, options->model_path);
    add_run_options(*command, options->run);
    add_precision_option(*command, options->against, "--against",
                         "Also run this precision and report how often the top-1 classes agree");
    command->add_flag("--top5", options->top5, "Report top-5 accuracy too");
    command->add_flag("--per-class", options->per_class, "Report each class's accuracy too");
    command->add_option("--output,-o", options->output,
                        "Write each image's result: CSV if FILE ends in .csv, else JSON lines "
                        "({\"image\", \"label\", \"name\", \"top5\", \"correct\"} or {\"image\", \"error\"})");
    command->add_option("--synsets", options->synsets,
                        "Synset list: line i = 'WordNet-id name' of class i (default: synset_words.txt beside the "
                        "images, else the model's labels if they start with WordNet ids)");
    command->add_flag("--json", options->json, "One JSON object instead of text");
    command
        ->add_option(
            "images", options->inputs,
            "Image files (JPEG, PNG, WebP, BMP, TIFF), or directories: their image files and those below them; "
            "the class of each comes from a WordNet id "
            "prefix (n01440764_x.JPEG), a WordNet-id folder, or a folder named after a label")
        ->required();
    command->callback([options] { eval(*options); });
}

}  // namespace onevit::cli
