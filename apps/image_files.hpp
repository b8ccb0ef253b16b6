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

// An image argument decoded: a file, or for "-" the standard input, read once
// (on first use; decoded again from memory when asked again) and named "stdin"
// in messages. Throws onevit::Error.
Image decode_input(const std::string& path, int channels);

// The image files the arguments name (list_image_inputs: "-" stays "-", a
// directory becomes the image files in it and below it, sorted by path); the
// other files in the directories are skipped, and counted in one line on stderr
// ("onevit: note: ..."). A directory without image files is an error.
std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs);

}  // namespace onevit::cli
