// The subcommands of the `onevit` program. Each add_*_command registers one on
// the top-level app; the subcommand does its work in its CLI11 callback and
// reports failure by throwing (onevit::Error with the message to print, or
// CLI::RuntimeError when it has already reported on stderr).
#pragma once

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <string>
#include <type_traits>

namespace onevit::cli {

void add_info_command(CLI::App& app);
void add_infer_command(CLI::App& app);
void add_classify_command(CLI::App& app);
void add_embed_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_explain_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_serve_command(CLI::App& app);  // serve/serve_command.cpp

// A lower bound for a numeric option; CLI11's own ranges print their limits
// with six decimals, even DBL_MAX in full.
template <typename Number>
CLI::Validator at_least(Number minimum) {
    const std::string bound = fmt::format("{} >= {}", std::is_integral_v<Number> ? "an integer" : "a number", minimum);
    return CLI::Validator(
        [minimum, bound](std::string& input) -> std::string {
            Number value{};
            if (CLI::detail::lexical_cast(input, value) && value >= minimum) return {};
            return "must be " + bound + ", got " + input;
        },
        "");  // the message says the bound; --help stays "INT=1"
}

// A numeric option of at least `minimum`, its default shown in --help.
template <typename Number>
CLI::Option* add_bounded_option(CLI::App& command, const std::string& name, Number& value, const std::string& help,
                                Number minimum) {
    return command.add_option(name, value, help)->capture_default_str()->check(at_least(minimum));
}

}  // namespace onevit::cli
