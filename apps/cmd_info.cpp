#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "onevit/model.hpp"
#include "model/thread_plan.hpp"

namespace onevit::cli {

namespace {

// 5717416 → "5,717,416"
std::string grouped(std::uintmax_t count) {
    std::string digits = std::to_string(count);
    for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<std::size_t>(i), ",");
    return digits;
}

// 5717416 → "5,717,416 (5.7 M)"
std::string parameter_count_string(std::int64_t count) {
    const std::string digits = grouped(static_cast<std::uintmax_t>(count));
    const double value = static_cast<double>(count);
    if (value >= 1e9) return fmt::format("{} ({:.1f} G)", digits, value / 1e9);
    if (value >= 1e6) return fmt::format("{} ({:.1f} M)", digits, value / 1e6);
    if (value >= 1e3) return fmt::format("{} ({:.1f} k)", digits, value / 1e3);
    return digits;
}

// 22884416 → "22,884,416 bytes (21.8 MiB)"
std::string byte_count_string(std::uintmax_t bytes) {
    const std::string digits = grouped(bytes);
    const double value = static_cast<double>(bytes);
    if (value >= 1 << 30) return fmt::format("{} bytes ({:.1f} GiB)", digits, value / (1 << 30));
    if (value >= 1 << 20) return fmt::format("{} bytes ({:.1f} MiB)", digits, value / (1 << 20));
    if (value >= 1 << 10) return fmt::format("{} bytes ({:.1f} KiB)", digits, value / (1 << 10));
    return digits + " bytes";
}

const char* yes_no(bool value) { return value ? "yes" : "no"; }

std::string resize_string(const Architecture& arch, const Preprocessing& recipe) {
    if (recipe.resize == Resize::direct)
        return fmt::format("{} to {} x {}", to_string(recipe.resize), arch.image_height, arch.image_width);
    if (recipe.resize == Resize::squash_then_crop)
        return fmt::format("{} (both sides to {}, centre crop {} x {})", to_string(recipe.resize), recipe.resize_size,
                           arch.image_height, arch.image_width);
    return fmt::format("{} (shorter side to {}, centre crop {} x {})", to_string(recipe.resize), recipe.resize_size,
                       arch.image_height, arch.image_width);
}

// The 2025-26 layers a version 2 file lists (weights/FORMAT.md, "Features"), with
// what each reads from the metadata; "none" for a classic ViT.
std::string features_string(const Architecture& arch) {
    std::vector<std::string> shown;
    for (const std::string& f : arch.features) {
        if (f == "rope")
            shown.push_back(fmt::format("rope ({} layout, {})", to_string(arch.rope),
                                        arch.rope_per_block ? "a table per block" : "one table"));
        else if (f == "attn_pool_shape")
            shown.push_back(fmt::format("attn_pool_shape ({} heads, mlp {}{})", arch.attn_pool_heads(),
                                        arch.attn_pool_mlp_dim(), arch.pool_prefix ? ", over the prefix too" : ""));
        else
            shown.push_back(f);
    }
    return shown.empty() ? "none" : fmt::format("{}", fmt::join(shown, ", "));
}

struct InfoOptions {
    std::string model;
    bool verify = false;
    bool plan = false;
    int batch = 1;
    int cores = 0;  // 0: this machine's
};

// --plan: what the cost model chooses for this model on this machine.
void print_plan(const Architecture& arch, int batch, int cores, Precision precision) {
    fmt::print("plan               for batch {} on {} cores at {} (onevit's cost model)\n", batch, cores,
               to_string(precision));
    const ThreadPlan latency = choose_thread_plan(arch, batch, Hint::latency, cores, 0, precision);
    const ThreadPlan throughput = choose_thread_plan(arch, batch, Hint::throughput, cores, 0, precision);
    fmt::print("  {:<17} {} threads, modelled {:.3f} ms\n", "latency", latency.threads_per_stream, latency.modelled_ms);
    fmt::print("  {:<17} {} streams x {} threads, modelled {:.1f} images/s\n", "throughput", throughput.streams,
               throughput.threads_per_stream, throughput.modelled_images_per_s);
    std::string by_threads;
    for (int t = 1; t <= cores; t = t < 4 ? t + 1 : t * 2)
        by_threads += fmt::format("{}{}: {:.3f}", by_threads.empty() ? "" : ", ", t,
                                  modelled_latency_ms(arch, batch, t, precision));
    fmt::print("  {:<17} {} (threads: ms)\n", "modelled latency", by_threads);
}

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
    if (arch.pool_proj > 0)
        field("pool proj",
              fmt::format("{} -> {}, activation {}", arch.pooled_dim(), arch.pool_proj, to_string(arch.pool_proj_act)));
    field("head", to_string(arch.head));
    field("features", features_string(arch));
    field("embedding", fmt::format("{} wide{}", arch.embed_dim(), info.embedding.empty() ? "" : ", " + info.embedding));
    row("parameters", parameter_count_string(info.parameter_count));
    row("weights stored",
        fmt::format("{} (commands compute in it unless --precision says otherwise)", to_string(info.stored_precision)));
    row("file size", byte_count_string(std::filesystem::file_size(options.model)));
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
    if (options.plan)
        print_plan(arch, options.batch, options.cores > 0 ? options.cores : available_cores(), info.stored_precision);
}

}  // namespace

void add_info_command(CLI::App& app) {
    CLI::App* command = app.add_subcommand("info", "Show a model's architecture, size and preprocessing");
    auto options = std::make_shared<InfoOptions>();
    command->add_option("model", options->model, "Model file (.ovit)")->required();
    command->add_flag("--verify", options->verify, "Also check the checksum of all tensor data");
    command->add_flag("--plan", options->plan, "Also show the threads and streams chosen for this machine");
    add_bounded_option(*command, "--batch,-b", options->batch, "The batch size --plan chooses for", 1);
    add_bounded_option(*command, "--cores", options->cores, "The cores --plan chooses for (0 = this machine's)", 0);
    command->callback([options] { print_info(*options); });
}

}  // namespace onevit::cli
