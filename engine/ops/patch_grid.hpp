// The geometry of cutting images into square patches.
#pragma once

namespace onevit {

struct PatchGrid {
    int channels = 0;
    int image_height = 0;
    int image_width = 0;
    int patch = 0;
    int grid_height() const { return image_height / patch; }
    int grid_width() const { return image_width / patch; }
    int patches() const { return grid_height() * grid_width(); }
    int patch_dim() const { return channels * patch * patch; }
};

}  // namespace onevit
