// The image files named on a command line, by one rule for every command: files
// as given, directories as the .jpg/.jpeg/.png files in them and below them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace onevit::cli {

// The commands' help for their image arguments.
inline constexpr const char* kImageInputsHelp =
    "Image files, or directories: their .jpg/.jpeg/.png files and those below them";

bool has_image_extension(const std::filesystem::path& path);

// A directory becomes its image files and those of its subdirectories, sorted
// by path; the other files in it are skipped, and counted in one line on stderr
// ("onevit: note: ..."). Any other argument is taken as an image path as given,
// so that a missing file, or one of another type, is reported like an
// undecodable one. A directory without image files is an error.
std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs);

}  // namespace onevit::cli
