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
#include "run_options.hpp"

namespace onevit::cli {

namespace {

// Images per Model::run call: bounds the activation memory of a large input file.
constexpr std::int64_t kMaxRunBatch = 64;

struct InferOptions {
    std::string model_path;
    std::string input_path;
    std::string output_path;
    std::string cls_path;        // optional: class token after the final norm, (batch, dim)
    std::string tokens_path;     // optional: patch tokens after the final norm, (batch, patches, dim)
    std::string attention_path;  // optional: attention probabilities, (batch, depth, heads, tokens, tokens)
    std::string embedding_path;  // optional: the pooled embedding, (batch, dim)
    RunOptions run;
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
    if (options.output_path.empty() && options.embedding_path.empty() && options.cls_path.empty() &&
        options.tokens_path.empty() && options.attention_path.empty())
        throw Error("nothing to write: give --output (logits), --embedding, --cls, --tokens and/or --attention");
    const Model model = load_model(options.model_path, options.run);
    const Architecture& arch = model.info().arch;
    if (!options.cls_path.empty() && !arch.class_token)
        throw Error(options.model_path + ": the model has no class token (--cls)");
    const npy::Array input = npy::read_float32(options.input_path);
    check_input_shape(input, arch, options.input_path);

    const std::int64_t batch = input.shape[0];
    const std::size_t image_size = input.data.size() / static_cast<std::size_t>(batch);
    const bool want_features =
        !options.cls_path.empty() || !options.tokens_path.empty() || !options.embedding_path.empty();
    npy::Array logits{{batch, arch.outputs()}, {}};
    npy::Array cls{{batch, arch.dim}, {}};
    npy::Array tokens{{batch, arch.patch_tokens(), arch.dim}, {}};
    npy::Array attention{{batch, arch.depth, arch.heads, arch.tokens(), arch.tokens()}, {}};
    npy::Array embedding{{batch, arch.embed_dim()}, {}};
    for (std::int64_t first = 0; first < batch; first += kMaxRunBatch) {
        const int count = static_cast<int>(std::min(kMaxRunBatch, batch - first));
        Features features;
        AttentionMaps maps;
        const std::vector<float> chunk =
            model.run(input.data.data() + static_cast<std::size_t>(first) * image_size, count,
                      want_features ? &features : nullptr, options.attention_path.empty() ? nullptr : &maps);
        logits.data.insert(logits.data.end(), chunk.begin(), chunk.end());
        cls.data.insert(cls.data.end(), features.class_token.begin(), features.class_token.end());
        tokens.data.insert(tokens.data.end(), features.patch_tokens.begin(), features.patch_tokens.end());
        attention.data.insert(attention.data.end(), maps.probs.begin(), maps.probs.end());
        embedding.data.insert(embedding.data.end(), features.embedding.begin(), features.embedding.end());
    }
    if (!options.output_path.empty()) npy::write_float32(options.output_path, logits);
    if (!options.embedding_path.empty()) npy::write_float32(options.embedding_path, embedding);
    if (!options.cls_path.empty()) npy::write_float32(options.cls_path, cls);
    if (!options.tokens_path.empty()) npy::write_float32(options.tokens_path, tokens);
    if (!options.attention_path.empty()) npy::write_float32(options.attention_path, attention);
}

}  // namespace

void add_infer_command(CLI::App& app) {
    CLI::App* command =
        app.add_subcommand("infer", "Run a batch of preprocessed images (.npy, float32 NCHW) and save the logits");
    auto options = std::make_shared<InferOptions>();
    add_model_option(*command, options->model_path);
    command->add_option("--input,-i", options->input_path, "Input .npy: float32, shape (batch, C, H, W)")->required();
    command->add_option("--output,-o", options->output_path,
                        "Output .npy: float32 logits, shape (batch, classes); for a model without a classifier "
                        "(classes 0), its embedding, shape (batch, dim)");
    command->add_option("--cls", options->cls_path,
                        "Also save the class token after the final norm: float32 .npy, shape (batch, dim)");
    command->add_option("--tokens", options->tokens_path,
                        "Also save the patch tokens after the final norm: float32 .npy, shape (batch, patches, dim)");
    command->add_option("--attention", options->attention_path,
                        "Also save every block's attention probabilities: float32 .npy, "
                        "shape (batch, depth, heads, tokens, tokens)");
    command->add_option("--embedding", options->embedding_path,
                        "Save the pooled image embedding (the classifier's input): float32 .npy, shape (batch, dim)");
    add_precision_option(*command, options->run.precision);
    add_threads_option(*command, options->run.threads);
    command->callback([options] { infer(*options); });
}

}  // namespace onevit::cli
