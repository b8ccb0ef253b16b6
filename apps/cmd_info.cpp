#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "commands.hpp"
#include "onevit/model.hpp"

namespace onevit::cli {

namespace {

// 5717416 → "5,717,416 (5.7 M)"
std::string parameter_count_string(std::int64_t count) {
    std::string digits = std::to_string(count);
    for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<std::size_t>(i), ",");
    const double value = static_cast<double>(count);
    if (value >= 1e9) return fmt::format("{} ({:.1f} G)", digits, value / 1e9);
    if (value >= 1e6) return fmt::format("{} ({:.1f} M)", digits, value / 1e6);
    if (value >= 1e3) return fmt::format("{} ({:.1f} k)", digits, value / 1e3);
    return digits;
}

const char* yes_no(bool value) { return value ? "yes" : "no"; }

std::string resize_string(const Architecture& arch, const Preprocessing& recipe) {
    if (recipe.resize == Resize::direct)
        return fmt::format("{} to {} x {}", to_string(recipe.resize), arch.image_height, arch.image_width);
    if (recipe.resize == Resize::squash_then_crop)
        return fmt::format("{} (both sides to {}, centre crop {} x {})", to_string(recipe.resize),
                           recipe.resize_size, arch.image_height, arch.image_width);
    return fmt::format("{} (shorter side to {}, centre crop {} x {})", to_string(recipe.resize), recipe.resize_size,
                       arch.image_height, arch.image_width);
}

struct InfoOptions {
    std::string model;
    bool verify = false;
};

void print_info(const InfoOptions& options) {
    const Model model = Model::load(options.model);
    const ModelInfo& info = model.info();
    const Architecture& arch = info.arch;
    const Preprocessing& recipe = info.preprocess;

    // Two levels, values in one column: "name  value" rows and indented rows under a section title.
    const auto row = [](const char* name, const auto& value) { fmt::print("{:<19} {}\n", name, value); };
    const auto section = [](const char* title) { fmt::print("{}\n", title); };
    const auto field = [](const char* name, const auto& value) { fmt::print("  {:<17} {}\n", name, value); };

    row("model", options.model);
    section("architecture");
    field("family", arch.family);
    field("image size", fmt::format("{} x {}", arch.image_height, arch.image_width));
    field("channels", arch.channels);
    field("patch size", arch.patch_size);
    field("dim", arch.dim);
    field("depth", arch.depth);
    field("heads", arch.heads);
    field("head dim", arch.head_dim);
    field("mlp dim", arch.mlp_dim);
    field("classes", arch.num_classes);
    field("prefix tokens", arch.prefix_tokens);
    field("class token", yes_no(arch.class_token));
    field("norm pre", yes_no(arch.norm_pre));
    field("LayerNorm eps", arch.norm_eps);
    field("GELU", to_string(arch.gelu));
    field("attention scale", arch.attn_scale);
    field("qkv bias", yes_no(arch.qkv_bias));
    field("attention proj", yes_no(arch.attn_proj));
    field("final norm", yes_no(arch.final_norm));
    field("pooling", to_string(arch.pool));
    field("head norm", yes_no(arch.head_norm));
    field("head", to_string(arch.head));
    row("parameters", parameter_count_string(info.parameter_count));
    section("preprocessing");
    field("resize", resize_string(arch, recipe));
    field("interpolation", to_string(recipe.interpolation));
    field("mean", fmt::format("{}", fmt::join(recipe.mean, ", ")));
    field("std", fmt::format("{}", fmt::join(recipe.std, ", ")));
    row("labels", info.labels.empty() ? std::string("none") : std::to_string(info.labels.size()));
    if (options.verify) {
        model.verify();  // throws on a mismatch
        row("data checksum", "ok");
    }
}

}  // namespace

void add_info_command(CLI::App& app) {
    CLI::App* command = app.add_subcommand("info", "Show a model's architecture, size and preprocessing");
    auto options = std::make_shared<InfoOptions>();
    command->add_option("model", options->model, "Model file (.ovit)")->required();
    command->add_flag("--verify", options->verify, "Also check the checksum of all tensor data");
    command->callback([options] { print_info(*options); });
}

}  // namespace onevit::cli
