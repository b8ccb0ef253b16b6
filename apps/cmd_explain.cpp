// onevit explain: where the model looked. Per image, the attention rollout of
// its class token (onevit/rollout.hpp) as DIR/<stem>.npy, and DIR/<stem>.png:
// the model's input crop with the map blended over it and the top-1 class
// written across the top (and in the PNG's Title text chunk).
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
#include "heatmap.hpp"
#include "npy.hpp"
#include "onevit/error.hpp"
#include "onevit/image.hpp"
#include "onevit/model.hpp"
#include "onevit/rollout.hpp"
#include "png_write.hpp"

namespace onevit::cli {

namespace {

namespace fs = std::filesystem;

struct ExplainOptions {
    std::string model_path;
    std::string out_dir;
    std::vector<std::string> images;
};

std::string top1_text(const Prediction& top1) {
    const std::string name = top1.label.empty() ? fmt::format("class {}", top1.index) : top1.label;
    return fmt::format("{} {:.1f}%", name, 100.f * top1.prob);
}

// Explains one image; returns the top-1 prediction. Throws onevit::Error.
Prediction explain_image(const Model& model, const std::string& image_path, const fs::path& stem) {
    const ModelInfo& info = model.info();
    const Architecture& arch = info.arch;
    const std::vector<float> input = preprocess(decode_image(image_path, arch.channels), arch, info.preprocess);
    AttentionMaps attention;
    const std::vector<float> logits = model.run(input.data(), 1, nullptr, &attention);
    const Prediction top1 = top_k(logits.data(), arch.num_classes, 1, info.labels).front();
    const std::vector<float> map = attention_rollout(attention, 0, arch);

    Image picture = heatmap::overlay(heatmap::input_crop(input, arch, info.preprocess), map, arch.grid_height(),
                                     arch.grid_width());
    heatmap::caption(picture, top1_text(top1));
    const std::string title = top1.label.empty() ? fmt::format("class {}", top1.index) : top1.label;
    png::write(stem.string() + ".png", picture,
               {{"Title", title},
                {"Description", fmt::format("onevit explain: attention rollout heat-map; top-1 class {} ({}), p {:.4f}",
                                            top1.index, title, top1.prob)}});
    npy::write_float32(stem.string() + ".npy", {{arch.grid_height(), arch.grid_width()}, map});
    return top1;
}

void explain(const ExplainOptions& options) {
    std::error_code error;
    fs::create_directories(options.out_dir, error);
    if (error) throw Error(options.out_dir + ": cannot create the output directory: " + error.message());
    const Model model = Model::load(options.model_path);

    std::map<fs::path, std::string> written;  // output stem → the image it came from
    bool all_explained = true;
    for (const std::string& image : options.images) {
        const fs::path stem = fs::path(options.out_dir) / fs::path(image).stem();
        try {
            const auto [earlier, fresh] = written.emplace(stem, image);
            if (!fresh)
                throw Error(fmt::format("{}: its outputs {}.png/.npy would overwrite those of {}", image,
                                        stem.string(), earlier->second));
            const Prediction top1 = explain_image(model, image, stem);
            fmt::print("{}: {} -> {}.png, {}.npy\n", image, top1_text(top1), stem.string(), stem.string());
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
        "explain", "Attention heat-maps: per image, DIR/<stem>.png (input crop, rollout map, top-1) and DIR/<stem>.npy");
    auto options = std::make_shared<ExplainOptions>();
    command->add_option("--model,-m", options->model_path, "Model file (.ovit)")->required();
    command->add_option("--out,-o", options->out_dir, "Output directory (created if missing)")->required();
    command->add_option("images", options->images, "JPEG/PNG image files")->required();
    command->callback([options] { explain(*options); });
}

}  // namespace onevit::cli
