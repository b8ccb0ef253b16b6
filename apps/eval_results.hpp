// `onevit eval --output FILE`: one record per image, as timm's validate.py
// --results-file gives them. FILE ending in .csv: CSV (RFC 4180) with the header
// image,label,name,top5,correct,error (top5: the indices, space-separated);
// otherwise JSON lines: {"image": ..., "label": 258, "name": "Samoyed",
// "top5": [258, 259, ...], "correct": true} or {"image": ..., "error": "..."}.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace onevit::cli {

class EvalResults {
public:
    // An empty path writes nothing. Throws onevit::Error if the file cannot be created.
    explicit EvalResults(const std::string& path);
    ~EvalResults();
    EvalResults(const EvalResults&) = delete;
    EvalResults& operator=(const EvalResults&) = delete;

    // ranked: class indices, most probable first (up to five).
    void evaluated(const std::string& image, int label, const std::string& name, const std::vector<int>& ranked);
    void failed(const std::string& image, const std::string& error);
    // Flushes and closes; throws onevit::Error on a write failure (a full disk).
    void close();

private:
    std::string path_;
    std::FILE* file_ = nullptr;
    bool csv_ = false;
};

}  // namespace onevit::cli
