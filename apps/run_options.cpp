#include "run_options.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "commands.hpp"
#include "onevit/error.hpp"
#include "model/thread_plan.hpp"

namespace onevit::cli {

void add_model_option(CLI::App& command, std::string& path) {
    command.add_option("--model,-m", path, "Model file (.ovit)")->required();
}

void add_precision_option(CLI::App& command, std::string& precision, const std::string& name, const std::string& help) {
    command
        .add_option(
            name, precision,
            help + "; auto = the fastest this CPU runs natively (here: " + to_string(fastest_native_precision()) + ")")
        ->check(CLI::IsMember({"f32", "bf16", "int8", "auto"}));
}

void add_threads_option(CLI::App& command, int& threads) {
    add_bounded_option(command, "--threads,-t", threads, "Threads in all (0 = chosen per model by the cost model)", 0);
}

void add_batch_option(CLI::App& command, int& batch) {
    add_bounded_option(command, "--batch,-b", batch, "Images per run", 1);
}

void add_run_options(CLI::App& command, RunOptions& options) {
    add_precision_option(command, options.precision);
    add_threads_option(command, options.threads);
    add_batch_option(command, options.batch);
}

std::optional<Precision> resolve_precision(const std::string& precision) {
    if (precision.empty()) return std::nullopt;
    return parse_precision(precision);  // "auto" included
}

Model load_model(const std::string& path, const RunOptions& options, Options base) {
    // oneTBB runs no more threads than the process has cores, and warns on stderr
    // when asked for more: ask for what will run, and say so.
    const int cores = available_cores();
    base.threads = std::min(options.threads, cores);
    if (options.threads > cores)
        fmt::print(stderr, "onevit: note: --threads {}: this process has {} cores, so the model runs on {} threads\n",
                   options.threads, cores, cores);
    base.batch = options.batch;
    base.precision = resolve_precision(options.precision);
    return Model::load(path, base);
}

void require_classifier(const Model& model, const std::string& path) {
    if (model.info().arch.num_classes == 0)
        throw Error(path + ": the model has no classifier (num_classes 0): it gives image embeddings (onevit embed)");
}

}  // namespace onevit::cli
