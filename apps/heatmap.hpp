// Drawing an attention map over the image the model saw: what `onevit explain`
// writes and the desktop example shows.
#pragma once

#include <string>
#include <vector>

#include "onevit/image.hpp"
#include "onevit/model_info.hpp"

namespace onevit::heatmap {

// The model's input crop as 8-bit RGB at the input size: the preprocessed
// tensor (C × H × W, normalised) with the normalisation undone.
Image input_crop(const std::vector<float>& input, const Architecture& arch, const Preprocessing& recipe);

// crop (RGB) with `map` (grid_height × grid_width, row-major) upsampled
// bilinearly to the crop's size, its range stretched over matplotlib's
// perceptual "inferno" colour map (lowest value black, highest pale yellow),
// and blended over the crop.
Image overlay(const Image& crop, const std::vector<float>& map, int grid_height, int grid_width);

// Writes text in a dark band across the top of image (RGB), shortened with
// "..." to fit; nothing where the band would cover over a quarter of the image
// or fit under three characters.
void caption(Image& image, const std::string& text);

}  // namespace onevit::heatmap
