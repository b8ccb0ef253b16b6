// One image through the model with its attention traced: the top classes, the
// attention rollout map and the heat-map picture. What `onevit explain` writes
// and the desktop example shows.
#pragma once

#include <string>
#include <vector>

#include "onevit/image.hpp"
#include "onevit/model.hpp"

namespace onevit {

struct Explanation {
    std::vector<Prediction> top;  // most probable first; empty when the model has no classifier
    std::vector<float> map;       // attention rollout, grid_height × grid_width, summing to 1
    // The image as decoded, RGB, scaled up by heatmap::display_factor() where it is small.
    Image photo;
    Image overlay;  // photo with the map over the model's input crop, outlined; the rest dimmed
};

// How a path becomes pixels: decode_image, or the command line's (which reads "-" from stdin).
using ImageDecoder = Image (*)(const std::string& path, int channels);
Image decode_file(const std::string& path, int channels);

// Decodes, preprocesses and runs image_path; keeps the `classes` most probable
// (none for a model without a classifier: its map is still the rollout).
// Throws onevit::Error.
Explanation explain_image(const Model& model, const std::string& image_path, int classes,
                          ImageDecoder decode = decode_file);

// "Samoyed", or "class 258" where the model has no labels.
std::string prediction_name(const Prediction& prediction);
// "Samoyed 75.2%"
std::string prediction_text(const Prediction& prediction);
// What the explanation is of: its top-1's prediction_text, or, for a model
// without a classifier, kNoClassifier.
std::string headline(const Explanation& explanation);
inline constexpr const char* kNoClassifier = "no classifier (attention rollout only)";

}  // namespace onevit
