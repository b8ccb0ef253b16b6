// The image files named on a command line: files as given, directories as the
// .jpg/.jpeg/.png files inside them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace onevit::cli {

bool has_image_extension(const std::filesystem::path& path);

// A directory becomes its image files, sorted (with `recursive`, those of its
// subdirectories too, each directory's in turn); any other argument is taken as
// an image path as given, so that a missing file is reported like an undecodable
// one. A directory without image files is an error.
std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs, bool recursive = false);

}  // namespace onevit::cli
