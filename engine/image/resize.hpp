// Image resizing that reproduces PIL's Image.resize (Pillow 9.4) bit for bit,
// which is what torchvision's Resize does to a PIL image.
#pragma once

#include "onevit/image.hpp"
#include "onevit/model_info.hpp"

namespace onevit {

// A rectangle of the resized image, in its coordinates (or of the source, for
// resize_source).
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
// Where the image handed to resize lies in the source being resized: the
// whole of it, or (a JPEG decoded in part) the rectangle at (left, top) of a
// full_width × full_height source.
struct SourcePart {
    int left = 0;
    int top = 0;
    int full_width = 0;
    int full_height = 0;
};

// The rectangle of an in_width × in_height source that resizing it to
// width × height reads to compute `region`.
ResizeRegion resize_source(int in_width, int in_height, int width, int height, Interpolation filter,
                           const ResizeRegion& region);

// The resize of a source of which `in` is the part `part`; the part must hold
// resize_source's rectangle. Throws onevit::Error where it does not.
Image resize(const Image& in, const SourcePart& part, int width, int height, Interpolation filter,
             const ResizeRegion& region);

inline Image resize(const Image& in, int width, int height, Interpolation filter, const ResizeRegion& region) {
    return resize(in, SourcePart{0, 0, in.width, in.height}, width, height, filter, region);
}

inline Image resize(const Image& in, int width, int height, Interpolation filter) {
    return resize(in, width, height, filter, ResizeRegion{0, 0, width, height});
}

}  // namespace onevit
