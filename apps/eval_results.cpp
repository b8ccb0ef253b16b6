#include "eval_results.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "json_line.hpp"
#include "onevit/error.hpp"

namespace onevit::cli {

namespace {

// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
    std::string quoted = "\"";
    for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
}

}  // namespace

EvalResults::EvalResults(const std::string& path) : path_(path) {
    if (path.empty()) return;
    csv_ = std::filesystem::path(path).extension() == ".csv";
    file_ = std::fopen(path.c_str(), "w");
    if (!file_) throw Error(path + ": cannot create the results file");
    if (csv_) fmt::print(file_, "image,label,name,top5,correct,error\n");
}

EvalResults::~EvalResults() {
    if (file_) std::fclose(file_);
}

void EvalResults::evaluated(const std::string& image, int label, const std::string& name,
                            const std::vector<int>& ranked) {
    if (!file_) return;
    const bool correct = !ranked.empty() && ranked.front() == label;
    if (csv_) {
        fmt::print(file_, "{},{},{},{},{},\n", csv_field(image), label, csv_field(name), fmt::join(ranked, " "),
                   correct ? "true" : "false");
        return;
    }
    fmt::print(file_, "{}\n",
               json_line({{"image", image}, {"label", label}, {"name", name}, {"top5", ranked}, {"correct", correct}}));
}

void EvalResults::failed(const std::string& image, const std::string& error) {
    if (!file_) return;
    if (csv_)
        fmt::print(file_, "{},,,,,{}\n", csv_field(image), csv_field(error));
    else
        fmt::print(file_, "{}\n", json_line({{"image", image}, {"error", error}}));
}

void EvalResults::close() {
    if (!file_) return;
    std::FILE* file = file_;
    file_ = nullptr;
    if (std::fclose(file) != 0) throw Error(path_ + ": cannot write the results file");
}

}  // namespace onevit::cli
