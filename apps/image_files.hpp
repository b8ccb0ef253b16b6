// The image files named on a command line, by one rule for every command: files
// as given, "-" the standard input, directories as the image files (the formats
// onevit decodes, by extension) in them and below them.
#pragma once

#include <string>
#include <vector>

#include "onevit/image.hpp"

namespace onevit::cli {

// The commands' help for their image arguments.
inline constexpr const char* kImageInputsHelp =
    "Image files (JPEG, PNG, WebP, BMP, TIFF), - for the standard input, or directories: their image files and "
    "those below them";

// The extensions of image files, for messages: ".jpg, .jpeg, ..., .tif or .tiff".
std::string image_extensions_text();

// An image argument decoded: a file, or for "-" the standard input, read once
// (on first use; decoded again from memory when asked again) and named "stdin"
// in messages. Throws onevit::Error.
Image decode_input(const std::string& path, int channels);

// "-" stays "-" (the standard input). A directory becomes its image files and those of its subdirectories, sorted
// by path; the other files in it are skipped, and counted in one line on stderr
// ("onevit: note: ..."). Any other argument is taken as an image path as given,
// so that a missing file, or one of another type, is reported like an
// undecodable one. A directory without image files is an error.
std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs);

}  // namespace onevit::cli
