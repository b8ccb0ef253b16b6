#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "commands.hpp"
#include "precision_option.hpp"
#include "onevit/error.hpp"
#include "onevit/image.hpp"
#include "onevit/model.hpp"

namespace onevit::cli {

namespace {

namespace fs = std::filesystem;

// Images decoded and classified together: big enough to batch the matmuls,
// small enough that decoded full-size photos do not pile up in memory.
constexpr std::size_t kImagesPerBatch = 8;

struct ClassifyOptions {
    std::string model_path;
    int top = 5;
    bool json = false;
    std::string precision = "f32";
    std::vector<std::string> inputs;
};

bool has_image_extension(const fs::path& path) {
    std::string extension = path.extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return extension == ".jpg" || extension == ".jpeg" || extension == ".png";
}

// A directory becomes its image files, sorted; any other argument is taken as an
// image path as given, so that a missing file is reported like an undecodable one.
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
    std::vector<std::string> images;
    for (const std::string& input : inputs) {
        std::error_code error;
        if (!fs::is_directory(input, error)) {
            images.push_back(input);
            continue;
        }
        std::vector<std::string> found;
        for (const fs::directory_entry& entry : fs::directory_iterator(input))
            if (entry.is_regular_file() && has_image_extension(entry.path())) found.push_back(entry.path().string());
        if (found.empty()) throw Error(input + ": directory has no .jpg, .jpeg or .png files");
        std::sort(found.begin(), found.end());
        images.insert(images.end(), found.begin(), found.end());
    }
    return images;
}

// A float widened to double prints with up to 17 digits (0.752f → 0.7519999742507935);
// going through the float's shortest decimal form keeps the JSON as short as the value is exact.
double shortest_double(float value) { return std::stod(fmt::format("{}", value)); }

// One line, spaced as the documented contract shows it, so scripts that compare
// text and scripts that parse JSON both work:
// {"image": "a.png", "topk": [{"index": 1, "label": "x", "prob": 0.5}]}
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

class ResultPrinter {
public:
    explicit ResultPrinter(bool json) : json_(json) {}

    void predictions(const std::string& image, const std::vector<Prediction>& predictions) {
        if (json_) {
            nlohmann::ordered_json topk = nlohmann::ordered_json::array();
            for (const Prediction& p : predictions)
                topk.push_back({{"index", p.index}, {"label", p.label}, {"prob", shortest_double(p.prob)}});
            fmt::print("{}\n", json_line({{"image", image}, {"topk", topk}}));
            return;
        }
        fmt::print("{}{}\n  rank     prob  index  label\n", first_table_ ? "" : "\n", image);
        first_table_ = false;
        for (std::size_t rank = 0; rank < predictions.size(); ++rank) {
            const Prediction& p = predictions[rank];
            fmt::print("  {:>4}  {:6.2f}%  {:>5}  {}\n", rank + 1, 100.f * p.prob, p.index, p.label);
        }
    }

    void failure(const std::string& image, const std::string& message) {
        std::fflush(stdout);  // keep stdout and stderr in order on a terminal
        fmt::print(stderr, "onevit: error: {}\n", message);
        if (json_) fmt::print("{}\n", json_line({{"image", image}, {"error", message}}));
    }

private:
    bool json_;
    bool first_table_ = true;
};

// Decodes and classifies `images` as one batch, printing in input order.
// Returns whether every image was classified.
bool classify_batch(const Model& model, const std::vector<std::string>& images, int top, ResultPrinter& printer) {
    std::vector<Image> decoded;
    std::vector<std::string> errors(images.size());
    for (std::size_t i = 0; i < images.size(); ++i) {
        try {
            decoded.push_back(decode_image(images[i], model.info().arch.channels));
        } catch (const Error& e) {
            errors[i] = e.what();
        }
    }
    const std::vector<std::vector<Prediction>> predictions =
        decoded.empty() ? std::vector<std::vector<Prediction>>{} : model.classify(decoded, top);

    std::size_t next_prediction = 0;
    for (std::size_t i = 0; i < images.size(); ++i) {
        if (errors[i].empty())
            printer.predictions(images[i], predictions[next_prediction++]);
        else
            printer.failure(images[i], errors[i]);
    }
    return decoded.size() == images.size();
}

void classify(const ClassifyOptions& options) {
    const std::vector<std::string> images = expand_inputs(options.inputs);
    Options model_options;
    model_options.precision = resolve_precision(options.precision);
    const Model model = Model::load(options.model_path, model_options);
    const int top = std::min(options.top, model.info().arch.num_classes);

    ResultPrinter printer(options.json);
    bool all_classified = true;
    for (std::size_t first = 0; first < images.size(); first += kImagesPerBatch) {
        const auto begin = images.begin() + static_cast<std::ptrdiff_t>(first);
        const auto end = images.begin() + static_cast<std::ptrdiff_t>(std::min(first + kImagesPerBatch, images.size()));
        all_classified &= classify_batch(model, std::vector<std::string>(begin, end), top, printer);
    }
    // Each failure is already on stderr: exit 1 without another message.
    if (!all_classified) throw CLI::RuntimeError(1);
}

}  // namespace

void add_classify_command(CLI::App& app) {
    CLI::App* command = app.add_subcommand("classify", "Classify JPEG/PNG images: the top classes of each");
    auto options = std::make_shared<ClassifyOptions>();
    command->add_option("--model,-m", options->model_path, "Model file (.ovit)")->required();
    command->add_option("--top,-k", options->top, "Classes to show per image")
        ->capture_default_str()
        ->check(at_least(1));
    command->add_flag("--json", options->json, "One JSON object per image per line");
    add_precision_option(*command, options->precision);
    command->add_option("images", options->inputs, "Image files, or directories of .jpg/.jpeg/.png files")->required();
    command->callback([options] { classify(*options); });
}

}  // namespace onevit::cli
