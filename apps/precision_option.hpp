// --precision f32|bf16|int8|auto, shared by the commands that run a model.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "onevit/model.hpp"

namespace onevit::cli {

// Registers --precision on command, storing the choice in `precision` (default f32).
void add_precision_option(CLI::App& command, std::string& precision);

// The precision a --precision value names; "auto" = fastest_native_precision().
Precision resolve_precision(const std::string& precision);

}  // namespace onevit::cli
