#include "json_line.hpp"

#include <fmt/format.h>

namespace onevit::cli {

double shortest_double(float value) { return std::stod(fmt::format("{}", value)); }

std::string json_line(const nlohmann::ordered_json& value) {
    std::string line;
    if (value.is_object()) {
        for (const auto& item : value.items())
            line += (line.empty() ? "{" : ", ") + json_line(item.key()) + ": " + json_line(item.value());
        return line.empty() ? "{}" : line + "}";
    }
    if (value.is_array()) {
        for (const auto& element : value) line += (line.empty() ? "[" : ", ") + json_line(element);
        return line.empty() ? "[]" : line + "]";
    }
    return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace onevit::cli
