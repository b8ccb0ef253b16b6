// onevit explain: where the model looked. Per image, the attention rollout of
// its class token (onevit/rollout.hpp) as DIR/<stem>.npy, and DIR/<stem>.png:
// the photo at its own resolution (small ones scaled up) with the map blended
// over the model's input crop, outlined, and the top-1 class written across the
// top (and in the PNG's Title text chunk); a model without a classifier gets
// its map, captioned as such.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "commands.hpp"
#include "explanation.hpp"
#include "heatmap.hpp"
#include "image_files.hpp"
#include "npy.hpp"
#include "onevit/error.hpp"
#include "onevit/model.hpp"
#include "png_write.hpp"
#include "run_options.hpp"

namespace onevit::cli {

namespace {

namespace fs = std::filesystem;

struct ExplainOptions {
    std::string model_path;
    std::string out_dir;
    RunOptions run;
    std::vector<std::string> images;
};

// Explains one image into stem.png and stem.npy; returns what it shows
// (headline()). Throws onevit::Error.
std::string write_explanation(const Model& model, const std::string& image_path, const fs::path& stem) {
    const Architecture& arch = model.info().arch;
    Explanation explanation = explain_image(model, image_path, 1, decode_input);
    const std::string shown = headline(explanation);
    heatmap::caption(explanation.overlay, shown);
    std::string title = "attention rollout";
    std::string description = "onevit explain: attention rollout heat-map; the model has no classifier";
    if (!explanation.top.empty()) {
        const Prediction& top1 = explanation.top.front();
        title = prediction_name(top1);
        description = fmt::format("onevit explain: attention rollout heat-map; top-1 class {} ({}), p {:.4f}",
                                  top1.index, title, top1.prob);
    }
    png::write(stem.string() + ".png", explanation.overlay, {{"Title", title}, {"Description", description}});
    npy::write_float32(stem.string() + ".npy", {{arch.grid_height(), arch.grid_width()}, explanation.map});
    return shown;
}

void explain(const ExplainOptions& options) {
    std::error_code error;
    fs::create_directories(options.out_dir, error);
    if (error) throw Error(options.out_dir + ": cannot create the output directory: " + error.message());
    const std::vector<std::string> images = expand_image_inputs(options.images);
    const Model model = load_model(options.model_path, options.run);

    std::map<fs::path, std::string> written;  // output stem → the image it came from
    bool all_explained = true;
    for (const std::string& image : images) {
        const fs::path stem = fs::path(options.out_dir) / (image == "-" ? fs::path("stdin") : fs::path(image).stem());
        try {
            const auto earlier = written.find(stem);
            if (earlier != written.end())
                throw Error(fmt::format("{}: its outputs {}.png and .npy would overwrite those of {}", image,
                                        stem.string(), earlier->second));
            const std::string shown = write_explanation(model, image, stem);
            written.emplace(stem, image);
            fmt::print("{}: {} -> {}.png, {}.npy\n", image, shown, stem.string(), stem.string());
        } catch (const Error& e) {
            std::fflush(stdout);  // keep stdout and stderr in order on a terminal
            fmt::print(stderr, "onevit: error: {}\n", e.what());
            all_explained = false;
        }
    }
    // Each failure is already on stderr: exit 1 without another message.
    if (!all_explained) throw CLI::RuntimeError(1);
}

}  // namespace

void add_explain_command(CLI::App& app) {
    CLI::App* command = app.add_subcommand(
        "explain",
        "Attention heat-maps: per image, DIR/<stem>.png (the photo, the rollout map over the model's crop, the "
        "top-1) and DIR/<stem>.npy (DIR/stdin.* for -)");
    auto options = std::make_shared<ExplainOptions>();
    add_model_option(*command, options->model_path);
    command->add_option("--out,-o", options->out_dir, "Output directory (created if missing)")->required();
    add_precision_option(*command, options->run.precision);
    add_threads_option(*command, options->run.threads);
    command->add_option("images", options->images, kImageInputsHelp)->required();
    command->callback([options] { explain(*options); });
}

}  // namespace onevit::cli
