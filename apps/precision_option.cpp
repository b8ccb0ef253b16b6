#include "precision_option.hpp"

namespace onevit::cli {

void add_precision_option(CLI::App& command, std::string& precision) {
    const std::string help = std::string("Data type to compute in; auto = the fastest this CPU runs natively (here: ") +
                             to_string(fastest_native_precision()) + ")";
    command.add_option("--precision,-p", precision, help)
        ->capture_default_str()
        ->check(CLI::IsMember({"f32", "bf16", "int8", "auto"}));
}

Precision resolve_precision(const std::string& precision) {
    return precision == "auto" ? fastest_native_precision() : parse_precision(precision);
}

}  // namespace onevit::cli
