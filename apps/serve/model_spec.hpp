// The served model as the Open Inference Protocol shows it: its name and
// version, its two inputs (pixel_values: FP32 [-1, C, H, W]; image: BYTES [-1],
// encoded JPEG/PNG files) and its one output (logits FP32 [-1, classes], or
// embedding FP32 [-1, dim] for a model without a classifier).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "onevit/model_info.hpp"

namespace onevit::serve {

inline constexpr const char* kPixelInput = "pixel_values";
inline constexpr const char* kImageInput = "image";
inline constexpr const char* kModelVersion = "1";  // one model, one version

struct ModelSpec {
    std::string name;
    int channels = 0;
    int height = 0;
    int width = 0;
    int outputs = 0;                  // floats per image: classes, or dim for a headless model
    bool classifier = false;          // has classes: the classification extension applies
    std::vector<std::string> labels;  // empty, or one per class
    int max_batch = 1;                // images per request at most (--max-batch)

    static ModelSpec of(const ModelInfo& info, const std::string& name, int max_batch);

    std::size_t image_floats() const { return std::size_t(channels) * height * width; }
    const char* output_name() const { return classifier ? "logits" : "embedding"; }
    std::vector<std::int64_t> pixel_shape() const { return {-1, channels, height, width}; }
};

// The model name the command line implies: the file name without its directory and extension.
std::string model_name_from_path(const std::string& path);

}  // namespace onevit::serve
