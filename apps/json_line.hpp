// JSON output of `classify --json` and `embed --json`: one object per line.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace onevit::cli {

// A float widened to double prints with up to 17 digits (0.752f → 0.7519999742507935);
// going through the float's shortest decimal form keeps the JSON as short as the value is exact.
double shortest_double(float value);

// One line, spaced as the documented contract shows it, so scripts that compare
// text and scripts that parse JSON both work:
// {"image": "a.png", "topk": [{"index": 1, "label": "x", "prob": 0.5}]}
std::string json_line(const nlohmann::ordered_json& value);

}  // namespace onevit::cli
