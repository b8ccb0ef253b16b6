// A 5 × 7 pixel font, drawn by hand for this project: enough to write a class
// label onto an image without a font library (upper case; lower case is drawn
// as upper case; other characters as '?').
#pragma once

#include <cstdint>
#include <string>

#include "onevit/image.hpp"

namespace onevit::font {

constexpr int kGlyphWidth = 5;
constexpr int kGlyphHeight = 7;
constexpr int kAdvance = kGlyphWidth + 1;  // one blank column between characters

// Draws text with its top-left corner at (left, top), each font pixel as a
// scale × scale square of `colour` (one value per channel of image); pixels
// outside the image are skipped.
void draw_text(Image& image, const std::string& text, int left, int top, int scale, const std::uint8_t* colour);

}  // namespace onevit::font
