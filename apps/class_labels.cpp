#include "class_labels.hpp"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "onevit/error.hpp"

namespace onevit::cli {

namespace fs = std::filesystem;

namespace {

// "n" and eight digits.
bool is_wordnet_id(const std::string& s) {
    if (s.size() != 9 || s[0] != 'n') return false;
    for (std::size_t i = 1; i < s.size(); ++i)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

// The WordNet id at the start of `text` when it is followed by the end or by one of `separators`.
std::optional<std::string> leading_wordnet_id(const std::string& text, const std::string& separators) {
    const std::string id = text.substr(0, 9);
    if (!is_wordnet_id(id)) return std::nullopt;
    if (text.size() > 9 && separators.find(text[9]) == std::string::npos) return std::nullopt;
    return id;
}

std::string trimmed(const std::string& s) {
    const std::size_t begin = s.find_first_not_of(" \t\r");
    if (begin == std::string::npos) return {};
    return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

}  // namespace

std::optional<std::string> wordnet_id_of(const std::string& image_path) {
    const fs::path path(image_path);
    if (auto id = leading_wordnet_id(path.stem().string(), "_-. ")) return id;
    const std::string folder = path.parent_path().filename().string();
    if (is_wordnet_id(folder)) return folder;
    return std::nullopt;
}

ClassLabels::ClassLabels(const ModelInfo& model, const std::string& synsets_path,
                         const std::vector<std::string>& search_dirs) {
    const int num_classes = model.arch.num_classes;
    for (int k = 0; k < static_cast<int>(model.labels.size()); ++k) {
        const std::string& label = model.labels[k];
        // The whole label and its first name; on a clash the first class keeps the name.
        for (const std::string& name : {label, trimmed(label.substr(0, label.find(',')))})
            if (!name.empty()) by_label_.emplace(name, k);
    }
    if (!synsets_path.empty()) {
        read_synsets(synsets_path, num_classes);
        return;
    }
    for (const std::string& dir : search_dirs) {
        const fs::path candidate = fs::path(dir) / "synset_words.txt";
        std::error_code error;
        if (fs::is_regular_file(candidate, error)) {
            read_synsets(candidate.string(), num_classes);
            return;
        }
    }
    std::map<std::string, int> from_labels;
    for (int k = 0; k < static_cast<int>(model.labels.size()); ++k) {
        const auto id = leading_wordnet_id(model.labels[k], " \t");
        if (!id) return;
        from_labels.emplace(*id, k);
    }
    if (from_labels.empty()) return;
    by_wordnet_id_ = std::move(from_labels);
    synsets_source_ = "the model's labels";
}

void ClassLabels::read_synsets(const std::string& path, int num_classes) {
    std::ifstream in(path);
    if (!in) throw Error(path + ": cannot read the synset list");
    std::string line;
    int index = 0;
    for (int number = 1; std::getline(in, line); ++number) {
        if (trimmed(line).empty()) continue;
        const auto id = leading_wordnet_id(line, " \t\r");
        if (!id)
            throw Error(path + ":" + std::to_string(number) +
                        ": not a synset line (a WordNet id like n01440764, then the class name)");
        if (!by_wordnet_id_.emplace(*id, index).second)
            throw Error(path + ":" + std::to_string(number) + ": WordNet id " + *id + " is listed twice");
        ++index;
    }
    if (index != num_classes)
        throw Error(path + ": " + std::to_string(index) + " WordNet ids for a model of " + std::to_string(num_classes) +
                    " classes");
    synsets_source_ = path;
}

int ClassLabels::of(const std::string& image_path) const {
    if (const auto id = wordnet_id_of(image_path)) {
        if (synsets_source_.empty())
            throw Error(image_path + ": WordNet id " + *id +
                        ", but no synset list (give --synsets FILE, or put synset_words.txt beside the images)");
        const auto it = by_wordnet_id_.find(*id);
        if (it == by_wordnet_id_.end())
            throw Error(image_path + ": WordNet id " + *id + " is not in " + synsets_source_);
        return it->second;
    }
    const std::string folder = fs::path(image_path).parent_path().filename().string();
    const auto it = by_label_.find(folder);
    if (it == by_label_.end())
        throw Error(image_path +
                    ": no class: neither a WordNet id (n01440764_….JPEG, n01440764/…) nor a folder "
                    "named after one of the model's labels");
    return it->second;
}

}  // namespace onevit::cli
