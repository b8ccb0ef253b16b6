// The images of `embed` (and `classify`'s failures): decoded a batch at a time
// with per-image errors, and how a failed image is reported. Directories are
// expanded by image_files.hpp.
#pragma once

#include <string>
#include <vector>

#include "onevit/image.hpp"

namespace onevit::cli {

struct DecodedBatch {
    std::vector<Image> images;        // the images that decoded, in input order
    std::vector<std::string> errors;  // per input: empty, or why it did not decode
};
DecodedBatch decode_batch(const std::vector<std::string>& paths, int channels);

// The error on stderr (one line) and, for JSON output, {"image": ..., "error": ...} on stdout.
void print_image_failure(const std::string& image, const std::string& message, bool json);

}  // namespace onevit::cli
