// The options every command that runs a model shares — --precision, --threads,
// --batch — registered and read in one place, so that they take the same values
// and mean the same thing everywhere.
#pragma once

#include <CLI/CLI.hpp>

#include <cstddef>
#include <optional>
#include <string>

#include "onevit/model.hpp"

namespace onevit::cli {

// Images decoded and run together by default: big enough to batch the matmuls,
// small enough that decoded full-size photos do not pile up in memory.
constexpr int kImagesPerBatch = 8;

struct RunOptions {
    std::string precision;        // f32, bf16, int8 or auto; empty: the file's (ModelInfo::stored_precision)
    int threads = 0;              // 0: chosen per model
    int batch = kImagesPerBatch;  // images per run
};

// --model/-m FILE, required.
void add_model_option(CLI::App& command, std::string& path);
// --precision f32|bf16|int8|auto (or another option taking a precision: eval's --against).
void add_precision_option(CLI::App& command, std::string& precision, const std::string& name = "--precision,-p",
                          const std::string& help =
                              "Data type to compute in (default: the one the file was written "
                              "for, as `onevit info` shows)");
// --threads T (0 = chosen per model).
void add_threads_option(CLI::App& command, int& threads);
// --batch B, images per run.
void add_batch_option(CLI::App& command, int& batch);
// All three.
void add_run_options(CLI::App& command, RunOptions& options);

// The precision a --precision value names; "auto" = fastest_native_precision();
// none for "" (the option not given: the file's precision).
std::optional<Precision> resolve_precision(const std::string& precision);

// Loads the model as the options say, over `base` (streams, hint): its threads
// chosen for batches of options.batch. Threads beyond the cores this process may
// use are capped at them, said in one note on stderr.
Model load_model(const std::string& path, const RunOptions& options, Options base = {});

// For the commands that need a classifier: a model without one (num_classes 0)
// is refused, pointing at `onevit embed`, as the C and Python bindings do.
void require_classifier(const Model& model, const std::string& path);

}  // namespace onevit::cli
