// The image files that a front end's arguments name (`onevit classify DIR`,
// `python3 -m onevit.dask classify DIR`), by one rule. Internal: the programs
// and the Python module share it; it is not part of the public API.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace onevit {

struct ImageListing {
    std::vector<std::string> images;
    std::size_t skipped = 0;  // regular files in the directories that are not images
};

// A directory becomes its image files (by extension: has_image_extension) and
// those of its subdirectories, sorted by path; "-" (the standard input) and any
// other argument stay as given, so that a missing file, or one of another
// type, is reported like an undecodable one. Throws onevit::Error for a
// directory without image files or one that cannot be listed.
ImageListing list_image_inputs(const std::vector<std::string>& inputs);

// The extensions of image files, for messages: ".jpg, .jpeg, ..., .tif or .tiff".
std::string image_extensions_text();

// What a front end says after its name and "note: " when files were skipped.
std::string skipped_files_note(std::size_t skipped);

}  // namespace onevit
