#include "explanation.hpp"

#include <fmt/format.h>

#include "heatmap.hpp"
#include "onevit/rollout.hpp"

namespace onevit {

Image decode_file(const std::string& path, int channels) { return decode_image(path, channels); }

Explanation explain_image(const Model& model, const std::string& image_path, int classes, ImageDecoder decode) {
    const ModelInfo& info = model.info();
    const Architecture& arch = info.arch;
    const Image decoded = decode(image_path, arch.channels);
    const std::vector<float> input = preprocess(decoded, arch, info.preprocess);
    AttentionMaps attention;
    const std::vector<float> logits = model.run(input.data(), 1, nullptr, &attention);
    Explanation e;
    if (arch.num_classes > 0) e.top = top_k(logits.data(), arch.num_classes, classes, info.labels);
    e.map = attention_rollout(attention, 0, arch);
    // Shown in colour whatever the model reads (a grey model's photo is grey anyway).
    const Image colour = arch.channels == 3 ? decoded : decode(image_path, 3);
    const int factor = heatmap::display_factor(colour);
    e.photo = heatmap::scaled_up(colour, factor);
    CropBox box = input_crop_box(colour.width, colour.height, arch, info.preprocess);
    box = {box.left * factor, box.top * factor, box.width * factor, box.height * factor};
    e.overlay = heatmap::overlay(e.photo, box, e.map, arch.grid_height(), arch.grid_width());
    return e;
}

std::string prediction_name(const Prediction& prediction) {
    return prediction.label.empty() ? fmt::format("class {}", prediction.index) : prediction.label;
}

std::string prediction_text(const Prediction& prediction) {
    return fmt::format("{} {:.1f}%", prediction_name(prediction), 100.f * prediction.prob);
}

std::string headline(const Explanation& explanation) {
    return explanation.top.empty() ? kNoClassifier : prediction_text(explanation.top.front());
}

}  // namespace onevit
