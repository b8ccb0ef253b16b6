#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.hpp"

namespace {

// After a parse error, the subcommand whose --help would have helped.
std::string help_hint(const CLI::App& app) {
    const auto selected = app.get_subcommands();
    if (selected.empty()) return "onevit --help";
    return fmt::format("onevit {} --help", selected.front()->get_name());
}

// CLI11 reads an unknown subcommand or option before any subcommand as a stray
// argument, and only says that a subcommand is required.
std::string parse_error_message(const CLI::App& app, const CLI::ParseError& error) {
    const std::vector<std::string> unparsed = app.remaining();
    if (app.get_subcommands().empty() && !unparsed.empty())
        return fmt::format("unknown {} '{}'", unparsed.front()[0] == '-' ? "option" : "command", unparsed.front());
    return error.what();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ViT image classification on oneDNN + oneTBB", "onevit"};
    app.set_version_flag("--version", "onevit " ONEVIT_VERSION);
    app.require_subcommand(1);
    app.get_formatter()->column_width(32);
    onevit::cli::add_info_command(app);
    onevit::cli::add_infer_command(app);
    onevit::cli::add_classify_command(app);
    onevit::cli::add_embed_command(app);
    onevit::cli::add_bench_command(app);
    onevit::cli::add_explain_command(app);
    onevit::cli::add_eval_command(app);
    onevit::cli::add_serve_command(app);

    try {
        app.parse(argc, argv);
        // Results are worthless if they never reached the file or pipe (a full disk, say).
        if (std::fflush(stdout) != 0)
            throw std::runtime_error(std::string("cannot write the output: ") + std::strerror(errno));
        return 0;
    } catch (const CLI::ParseError& e) {
        // --help, --version, and failures a subcommand has already reported.
        if (e.get_exit_code() == 0 || dynamic_cast<const CLI::RuntimeError*>(&e)) return app.exit(e);
        fmt::print(stderr, "onevit: error: {} (see '{}')\n", parse_error_message(app, e), help_hint(app));
        return 2;
    } catch (const std::exception& e) {
        // onevit::Error is a std::exception: its message already names what failed.
        fmt::print(stderr, "onevit: error: {}\n", e.what());
        return 1;
    }
}
