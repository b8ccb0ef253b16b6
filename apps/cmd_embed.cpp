#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
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

namespace onevit::cli {

namespace {

struct EmbedOptions {
    std::string model_path;
    std::string output_path;  // .npy of the embeddings, (images, dim)
    bool json = false;
    bool normalize = false;
    std::vector<std::string> inputs;
};

// {"image": "a.png", "embedding": [0.1, -2.5, ...]}
void print_embedding(const std::string& image, const float* embedding, int dim) {
    nlohmann::ordered_json values = nlohmann::ordered_json::array();
    for (int i = 0; i < dim; ++i) values.push_back(shortest_double(embedding[i]));
    fmt::print("{}\n", json_line({{"image", image}, {"embedding", values}}));
}

void embed(const EmbedOptions& options) {
    if (options.output_path.empty() && !options.json)
        throw Error("nothing to write: give --output FILE.npy and/or --json");
    const std::vector<std::string> images = expand_image_inputs(options.inputs);
    const Model model = Model::load(options.model_path);
    const int dim = model.info().arch.dim;

    npy::Array embeddings{{0, dim}, {}};
    bool all_embedded = true;
    for (std::size_t first = 0; first < images.size(); first += kImagesPerBatch) {
        const auto begin = images.begin() + static_cast<std::ptrdiff_t>(first);
        const auto end = images.begin() + static_cast<std::ptrdiff_t>(std::min(first + kImagesPerBatch, images.size()));
        const std::vector<std::string> paths(begin, end);
        const DecodedBatch decoded = decode_batch(paths, model.info().arch.channels);
        const std::vector<float> rows = model.embed(decoded.images, options.normalize);
        std::size_t next_row = 0;
        for (std::size_t i = 0; i < paths.size(); ++i) {
            if (!decoded.errors[i].empty()) {
                print_image_failure(paths[i], decoded.errors[i], options.json);
                all_embedded = false;
                continue;
            }
            const float* row = rows.data() + next_row++ * static_cast<std::size_t>(dim);
            if (options.json) print_embedding(paths[i], row, dim);
            embeddings.data.insert(embeddings.data.end(), row, row + dim);
            ++embeddings.shape[0];
        }
    }
    if (!options.output_path.empty()) npy::write_float32(options.output_path, embeddings);
    // Each failure is already on stderr: exit 1 without another message.
    if (!all_embedded) throw CLI::RuntimeError(1);
}

}  // namespace

void add_embed_command(CLI::App& app) {
    CLI::App* command = app.add_subcommand(
        "embed", "Image embeddings: the pooled vector a classifier would read (what CLIP/DINOv2 users index)");
    auto options = std::make_shared<EmbedOptions>();
    command->add_option("--model,-m", options->model_path, "Model file (.ovit)")->required();
    command->add_option("--output,-o", options->output_path,
                        "Save the embeddings as float32 .npy, shape (images, dim): one row per image that "
                        "decoded, in input order");
    command->add_flag("--json", options->json, "Print one JSON object per image per line: {\"image\", \"embedding\"}");
    command->add_flag("--normalize", options->normalize, "Scale each embedding to unit L2 norm");
    command->add_option("images", options->inputs, "Image files, or directories of .jpg/.jpeg/.png files")->required();
    command->callback([options] { embed(*options); });
}

}  // namespace onevit::cli
