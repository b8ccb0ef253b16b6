#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "npy.hpp"
#include "onevit/error.hpp"
#include "onevit/model.hpp"

namespace onevit::cli {

namespace {

// Images per Model::run call: bounds the activation memory of a large input file.
constexpr std::int64_t kMaxRunBatch = 64;

struct InferOptions {
    std::string model_path;
    std::string input_path;
    std::string output_path;
};

void check_input_shape(const npy::Array& input, const Architecture& arch, const std::string& input_path) {
    const std::int64_t expected[] = {arch.channels, arch.image_height, arch.image_width};
    if (input.shape.size() != 4 || !std::equal(std::begin(expected), std::end(expected), input.shape.begin() + 1))
        throw Error(fmt::format(
            "{}: input shape {} does not match the model, which expects float32 NCHW "
            "(batch, {}, {}, {})",
            input_path, npy::shape_string(input.shape), arch.channels, arch.image_height, arch.image_width));
    if (input.shape[0] == 0) throw Error(input_path + ": input has no images (batch 0)");
}

void infer(const InferOptions& options) {
    const Model model = Model::load(options.model_path);
    const Architecture& arch = model.info().arch;
    const npy::Array input = npy::read_float32(options.input_path);
    check_input_shape(input, arch, options.input_path);

    const std::int64_t batch = input.shape[0];
    const std::size_t image_size = input.data.size() / static_cast<std::size_t>(batch);
    npy::Array logits{{batch, arch.num_classes}, {}};
    logits.data.reserve(static_cast<std::size_t>(batch) * static_cast<std::size_t>(arch.num_classes));
    for (std::int64_t first = 0; first < batch; first += kMaxRunBatch) {
        const int count = static_cast<int>(std::min(kMaxRunBatch, batch - first));
        const std::vector<float> chunk =
            model.run(input.data.data() + static_cast<std::size_t>(first) * image_size, count);
        logits.data.insert(logits.data.end(), chunk.begin(), chunk.end());
    }
    npy::write_float32(options.output_path, logits);
}

}  // namespace

void add_infer_command(CLI::App& app) {
    CLI::App* command =
        app.add_subcommand("infer", "Run a batch of preprocessed images (.npy, float32 NCHW) and save the logits");
    auto options = std::make_shared<InferOptions>();
    command->add_option("--model,-m", options->model_path, "Model file (.ovit)")->required();
    command->add_option("--input,-i", options->input_path, "Input .npy: float32, shape (batch, C, H, W)")->required();
    command->add_option("--output,-o", options->output_path, "Output .npy: float32 logits, shape (batch, classes)")
        ->required();
    command->callback([options] { infer(*options); });
}

}  // namespace onevit::cli
