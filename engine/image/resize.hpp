// Image resizing that reproduces PIL's Image.resize (Pillow 9.4) bit for bit,
// which is what torchvision's Resize does to a PIL image.
#pragma once

#include "onevit/image.hpp"
#include "onevit/model_info.hpp"

namespace onevit {

// A rectangle of the resized image, in its coordinates.
struct ResizeRegion {
    int left = 0;
    int top = 0;
    int width = 0;
    int height = 0;
};

// Image.resize((width, height), filter) of an 8-bit grey or RGB image, without
// reducing_gap: for bilinear and bicubic the antialiased two-pass convolution
// of Resample.c (horizontal pass first, 8-bit intermediate, 22-bit fixed-point
// weights), for nearest the affine nearest-neighbour map of Geometry.c.
// Only `region` of the width × height result is computed and returned; its
// pixels are those of the full resize, so a centre crop costs no more than
// the pixels it keeps. Throws onevit::Error on bad sizes or a region outside.
Image resize(const Image& in, int width, int height, Interpolation filter, const ResizeRegion& region);

inline Image resize(const Image& in, int width, int height, Interpolation filter) {
    return resize(in, width, height, filter, ResizeRegion{0, 0, width, height});
}

}  // namespace onevit
