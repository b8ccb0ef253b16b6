// Where an image's true class comes from, for `onevit eval`: a WordNet id at
// the start of its file name (`n01440764_tench.JPEG`) or as the name of its
// folder (`val/n01440764/x.JPEG`), whose line number (from 0) in a synset list
// (`synset_words.txt`: "n01440764 tench, Tinca tinca") is the class index; or a
// folder named after one of the model's labels (the whole label, or its first
// comma-separated name: `tench/` for "tench, Tinca tinca").
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "onevit/model_info.hpp"

namespace onevit::cli {

// The WordNet id an image's name or folder carries, if any.
std::optional<std::string> wordnet_id_of(const std::string& image_path);

class ClassLabels {
public:
    // synsets_path: the synset list; empty: `synset_words.txt` in the first of
    // `search_dirs` that has one, else the model's labels when each starts with
    // a WordNet id, else none (then only folders named after labels work).
    ClassLabels(const ModelInfo& model, const std::string& synsets_path, const std::vector<std::string>& search_dirs);

    // Where the WordNet ids come from ("" when there is no synset list).
    const std::string& synsets_source() const { return synsets_source_; }
    // The class index of the image; throws onevit::Error saying why it has none.
    int of(const std::string& image_path) const;

private:
    void read_synsets(const std::string& path, int num_classes);

    std::string synsets_source_;
    std::map<std::string, int> by_wordnet_id_;
    std::map<std::string, int> by_label_;
};

}  // namespace onevit::cli
