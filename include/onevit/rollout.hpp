// Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in
// Transformers"): where in the image the class token's information came from.
#pragma once

#include <vector>

#include "onevit/model.hpp"
#include "onevit/model_info.hpp"

namespace onevit {

// For image `image` of `maps` (from Model::run): each block's attention averaged
// over the heads, plus the identity (the residual path), rows renormalised to
// sum 1; those matrices multiplied from the last block down to the first; the
// class token's row (token 0, also for distilled models) over the patch tokens,
// as a grid_height × grid_width map (row-major) normalised to sum 1.
// Throws onevit::Error if maps does not fit arch or image is out of range.
std::vector<float> attention_rollout(const AttentionMaps& maps, int image, const Architecture& arch);

}  // namespace onevit
