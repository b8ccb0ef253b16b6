// Writing an 8-bit RGB or grey PNG with text chunks (tEXt: Latin-1 keyword and
// text), through libpng.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "onevit/image.hpp"

namespace onevit::png {

// text: (keyword, text) pairs, e.g. {"Title", "Samoyed"}. Throws onevit::Error
// naming path on any failure.
void write(const std::string& path, const Image& image, const std::vector<std::pair<std::string, std::string>>& text);

}  // namespace onevit::png
