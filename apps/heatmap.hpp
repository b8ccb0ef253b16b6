// Drawing an attention map over the photo the model saw, its input crop
// outlined: what `onevit explain` writes and the desktop example shows.
#pragma once

#include <string>
#include <vector>

#include "onevit/image.hpp"
#include "onevit/model_info.hpp"

namespace onevit::heatmap {

// Photos are shown at their own resolution, but at least this many pixels on
// the shorter side, so that a small input (the digits' 32 × 32) stays readable.
constexpr int kMinShorterSide = 448;

// The whole factor (>= 1) that brings the image's shorter side to kMinShorterSide.
int display_factor(const Image& image);
// image (RGB) with each pixel a factor × factor square.
Image scaled_up(const Image& image, int factor);

// photo (RGB) with `map` (grid_height × grid_width, row-major) upsampled
// bilinearly over `box` (the model's input crop, in photo pixels), its range
// stretched over matplotlib's perceptual "inferno" colour map (lowest value
// black, highest pale yellow) and blended over the photo there; outside the box
// the photo is dimmed, and the box is outlined.
Image overlay(const Image& photo, const CropBox& box, const std::vector<float>& map, int grid_height, int grid_width);

// Writes text in a dark band across the top of image (RGB), its letters sized
// to the image, shortened with "..." to fit; nothing where the band would cover
// over a quarter of the image or fit under three characters.
void caption(Image& image, const std::string& text);

}  // namespace onevit::heatmap
