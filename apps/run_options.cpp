#include "run_options.hpp"

#include "commands.hpp"
#include "onevit/error.hpp"

namespace onevit::cli {

void add_precision_option(CLI::App& command, std::string& precision, const std::string& name,
                          const std::string& help) {
    command.add_option(name, precision,
                       help + "; auto = the fastest this CPU runs natively (here: " +
                           to_string(fastest_native_precision()) + ")")
        ->capture_default_str()
        ->check(CLI::IsMember({"f32", "bf16", "int8", "auto"}));
}

void add_threads_option(CLI::App& command, int& threads) {
    command.add_option("--threads,-t", threads, "Threads in all (0 = chosen per model by the cost model)")
        ->capture_default_str()
        ->check(at_least(0));
}

void add_batch_option(CLI::App& command, int& batch) {
    command.add_option("--batch,-b", batch, "Images per run")->capture_default_str()->check(at_least(1));
}

void add_run_options(CLI::App& command, RunOptions& options) {
    add_precision_option(command, options.precision);
    add_threads_option(command, options.threads);
    add_batch_option(command, options.batch);
}

Precision resolve_precision(const std::string& precision) {
    return precision == "auto" ? fastest_native_precision() : parse_precision(precision);
}

Model load_model(const std::string& path, const RunOptions& options) {
    Options model_options;
    model_options.threads = options.threads;
    model_options.batch = options.batch;
    model_options.precision = resolve_precision(options.precision);
    return Model::load(path, model_options);
}

void require_classifier(const Model& model, const std::string& path) {
    if (model.info().arch.num_classes == 0)
        throw Error(path + ": the model has no classifier (num_classes 0): it gives image embeddings (onevit embed)");
}

}  // namespace onevit::cli
