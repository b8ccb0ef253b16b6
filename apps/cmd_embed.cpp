#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "image_files.hpp"
#include "image_inputs.hpp"
#include "json_line.hpp"
#include "npy.hpp"
#include "onevit/error.hpp"
#include "onevit/model.hpp"
#include "progress.hpp"
#include "run_options.hpp"

namespace onevit::cli {

namespace {

struct EmbedOptions {
    std::string model_path;
    std::string output_path;  // .npy of the embeddings, (images, dim)
    bool json = false;
    bool normalize = false;
    RunOptions run;
    std::vector<std::string> inputs;
};

// {"image": "a.png", "embedding": [0.1, -2.5, ...]}
void print_embedding(const std::string& image, const float* embedding, int dim) {
    nlohmann::ordered_json values = nlohmann::ordered_json::array();
    for (int i = 0; i < dim; ++i) values.push_back(shortest_double(embedding[i]));
    fmt::print("{}\n", json_line({{"image", image}, {"embedding", values}}));
}

// Beside emb.npy, emb.txt: the image of each row, one path per line.
std::string image_list_path(const std::string& output_path) {
    const std::string list = std::filesystem::path(output_path).replace_extension(".txt").string();
    if (list == output_path)
        throw Error(output_path + ": the embeddings' image list would overwrite it (give --output FILE.npy)");
    return list;
}

void write_image_list(const std::string& path, const std::vector<std::string>& images) {
    for (const std::string& image : images)
        if (image.find('\n') != std::string::npos)
            throw Error(image + ": a path with a line break cannot be listed one per line in " + path);
    std::FILE* file = std::fopen(path.c_str(), "w");
    if (!file) throw Error(path + ": cannot write the image list");
    for (const std::string& image : images) fmt::print(file, "{}\n", image);
    if (std::fclose(file) != 0) throw Error(path + ": cannot write the image list");
}

void embed(const EmbedOptions& options) {
    if (options.output_path.empty() && !options.json)
        throw Error("nothing to write: give --output FILE.npy and/or --json");
    const std::string list_path = options.output_path.empty() ? "" : image_list_path(options.output_path);
    const std::vector<std::string> images = expand_image_inputs(options.inputs);
    const Model model = load_model(options.model_path, options.run);
    const int dim = model.info().arch.embed_dim();
    const std::size_t per_batch = static_cast<std::size_t>(options.run.batch);

    // Row i is image i; an image that failed gets a row of NaN, so that rows stay in input order.
    npy::Array embeddings{{static_cast<std::int64_t>(images.size()), dim},
                          std::vector<float>(images.size() * dim, std::numeric_limits<float>::quiet_NaN())};
    Progress progress(images.size());
    progress.show(0);
    bool all_embedded = true;
    for (std::size_t first = 0; first < images.size(); first += per_batch) {
        const auto begin = images.begin() + static_cast<std::ptrdiff_t>(first);
        const auto end = images.begin() + static_cast<std::ptrdiff_t>(std::min(first + per_batch, images.size()));
        const std::vector<std::string> paths(begin, end);
        const DecodedBatch decoded = decode_batch(paths, model.info().arch.channels);
        const std::vector<float> rows = model.embed(decoded.images, options.normalize);
        std::size_t next_row = 0;
        for (std::size_t i = 0; i < paths.size(); ++i) {
            if (!decoded.errors[i].empty()) {
                progress.make_room(stderr);
                print_image_failure(paths[i], decoded.errors[i], options.json);
                all_embedded = false;
                continue;
            }
            const float* row = rows.data() + next_row++ * static_cast<std::size_t>(dim);
            if (options.json) {
                progress.make_room(stdout);
                print_embedding(paths[i], row, dim);
            }
            std::copy(row, row + dim, embeddings.data.begin() + static_cast<std::ptrdiff_t>((first + i) * dim));
        }
        progress.show(first + paths.size());
    }
    if (!options.output_path.empty()) {
        npy::write_float32(options.output_path, embeddings);
        write_image_list(list_path, images);
    }
    // Each failure is already on stderr: exit 1 without another message.
    if (!all_embedded) throw CLI::RuntimeError(1);
}

}  // namespace

void add_embed_command(CLI::App& app) {
    CLI::App* command = app.add_subcommand(
        "embed", "Image embeddings: the pooled vector a classifier would read (what CLIP/DINOv2 users index)");
    auto options = std::make_shared<EmbedOptions>();
    add_model_option(*command, options->model_path);
    command->add_option("--output,-o", options->output_path,
                        "Save the embeddings as float32 .npy, shape (images, dim), row i = image i in input order "
                        "(NaN where it failed), and beside it FILE.txt: the image of each row, one per line");
    command->add_flag("--json", options->json, "Print one JSON object per image per line: {\"image\", \"embedding\"}");
    command->add_flag("--normalize", options->normalize, "Scale each embedding to unit L2 norm");
    add_run_options(*command, options->run);
    command->add_option("images", options->inputs, kImageInputsHelp)->required();
    command->callback([options] { embed(*options); });
}

}  // namespace onevit::cli
