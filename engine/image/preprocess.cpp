// Model input from a decoded image: torchvision's
//   Resize(resize_size) + CenterCrop((H, W))   (shorter_then_crop), or
//   Resize((H, W))                             (direct),
//   Resize((resize_size, resize_size)) + CenterCrop((H, W))   (squash_then_crop),
// then ToTensor + Normalize(mean, std), on a PIL image.

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "onevit/error.hpp"
#include "onevit/image.hpp"
#include "image/decoders.hpp"
#include "image/resize.hpp"

namespace onevit {
namespace {

// One axis of the centre crop, in resized-image coordinates.
struct Span {
    int offset;  // negative where torchvision pads
    int length;
};

// torchvision's center_crop along one axis of `size` pixels, cropping to
// `crop`: when the image is smaller it is zero-padded by (crop - size) // 2
// before; otherwise the offset is int(round((size - crop) / 2.0)) with
// Python's round-half-to-even.
Span centre_crop(int size, int crop) {
    if (crop > size) return {-((crop - size) / 2), crop};
    const int d = size - crop;
    const int half = d / 2;
    const bool round_up = d % 2 == 1 && half % 2 == 1;
    return {round_up ? half + 1 : half, crop};
}

// torchvision's _compute_resized_output_size for an int size: the shorter
// side becomes `size`, the longer int(size * long / short).
void shorter_side_size(int width, int height, int size, int& out_width, int& out_height) {
    const bool wide = width > height;
    const std::int64_t shorter = wide ? height : width;
    const std::int64_t longer = wide ? width : height;
    // Python computes size * long exactly, then one correctly rounded division.
    const double scaled = static_cast<double>(size * longer) / static_cast<double>(shorter);
    if (scaled > INT_MAX)
        throw Error("preprocess: resizing the shorter side to " + std::to_string(size) +
                    " makes the longer side too large");
    const int new_long = static_cast<int>(scaled);
    out_width = wide ? new_long : size;
    out_height = wide ? size : new_long;
}

void check_recipe(const Architecture& arch, const Preprocessing& recipe) {
    const std::string channels = std::to_string(arch.channels);
    if (arch.image_height <= 0 || arch.image_width <= 0) throw Error("preprocess: model input size is not positive");
    if (recipe.mean.size() != static_cast<std::size_t>(arch.channels) ||
        recipe.std.size() != static_cast<std::size_t>(arch.channels))
        throw Error("preprocess: mean and std need " + channels + " values each");
    for (float s : recipe.std)
        if (s == 0.f) throw Error("preprocess: std has a zero");
    if (recipe.resize != Resize::direct && recipe.resize_size <= 0)
        throw Error(std::string("preprocess: resize_size must be positive for ") + to_string(recipe.resize));
}

void check(const Image& image, const Architecture& arch, const Preprocessing& recipe) {
    if (image.channels != arch.channels)
        throw Error("preprocess: image has " + std::to_string(image.channels) + " channels, the model takes " +
                    std::to_string(arch.channels));
    if (image.width <= 0 || image.height <= 0 ||
        image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * image.channels)
        throw Error("preprocess: image size and pixel buffer disagree");
    check_recipe(arch, recipe);
}

// What the recipe makes of a width × height image: the resize, the part of it
// the centre crop keeps (only that is computed), and where that part lands in
// the model input (inset where the crop is larger than the image: padding).
struct Plan {
    int resized_w = 0;
    int resized_h = 0;
    ResizeRegion kept;
    int pad_left = 0;
    int pad_top = 0;
};

Plan plan(int width, int height, const Architecture& arch, const Preprocessing& recipe) {
    Plan p;
    p.resized_w = arch.image_width;
    p.resized_h = arch.image_height;
    if (recipe.resize == Resize::shorter_then_crop)
        shorter_side_size(width, height, recipe.resize_size, p.resized_w, p.resized_h);
    if (recipe.resize == Resize::squash_then_crop) p.resized_w = p.resized_h = recipe.resize_size;
    const Span cols = centre_crop(p.resized_w, arch.image_width);
    const Span rows = centre_crop(p.resized_h, arch.image_height);
    p.kept.left = std::max(cols.offset, 0);
    p.kept.top = std::max(rows.offset, 0);
    p.kept.width = std::min(p.resized_w, cols.offset + cols.length) - p.kept.left;
    p.kept.height = std::min(p.resized_h, rows.offset + rows.length) - p.kept.top;
    p.pad_left = p.kept.left - cols.offset;
    p.pad_top = p.kept.top - rows.offset;
    return p;
}

// ToTensor + Normalize of the kept part of the resize, placed in the model input
// `out` (channels × H × W floats, every one written).
void normalise(const Image& resized, const Plan& p, const Architecture& arch, const Preprocessing& recipe, float* out) {
    const int out_h = arch.image_height;
    const int out_w = arch.image_width;
    const int channels = arch.channels;
    const std::size_t plane_size = static_cast<std::size_t>(out_h) * out_w;
    // ToTensor divides by 255, Normalize subtracts and divides, all in float32.
    std::vector<float> lut(static_cast<std::size_t>(channels) * 256);
    for (int c = 0; c < channels; ++c)
        for (int v = 0; v < 256; ++v)
            lut[c * 256 + v] = (static_cast<float>(v) / 255.f - recipe.mean[c]) / recipe.std[c];
    if (resized.width != out_w || resized.height != out_h)  // torchvision pads with black
        for (int c = 0; c < channels; ++c) std::fill_n(out + c * plane_size, plane_size, lut[c * 256]);
    for (int y = 0; y < resized.height; ++y) {
        const std::uint8_t* src = resized.pixels.data() + static_cast<std::size_t>(y) * resized.width * channels;
        float* dst = out + static_cast<std::size_t>(y + p.pad_top) * out_w + p.pad_left;
        if (channels == 3) {  // one pass over the interleaved row, the three planes written together
            float* planes[3] = {dst, dst + plane_size, dst + 2 * plane_size};
            for (int x = 0; x < resized.width; ++x, src += 3) {
                planes[0][x] = lut[src[0]];
                planes[1][x] = lut[256 + src[1]];
                planes[2][x] = lut[512 + src[2]];
            }
        } else {
            for (int x = 0; x < resized.width; ++x) dst[x] = lut[src[x]];
        }
    }
}

std::vector<float> input_tensor(const Architecture& arch) {
    return std::vector<float>(static_cast<std::size_t>(arch.channels) * arch.image_height * arch.image_width);
}

}  // namespace

std::vector<float> preprocess(const Image& image, const Architecture& arch, const Preprocessing& recipe) {
    check(image, arch, recipe);
    const Plan p = plan(image.width, image.height, arch, recipe);
    std::vector<float> out = input_tensor(arch);
    normalise(resize(image, p.resized_w, p.resized_h, recipe.interpolation, p.kept), p, arch, recipe, out.data());
    return out;
}

std::vector<float> preprocess_image_bytes(const std::uint8_t* data, std::size_t size, const Architecture& arch,
                                          const Preprocessing& recipe, const DecodeLimits& limits,
                                          const std::string& name) {
    std::vector<float> out = input_tensor(arch);
    preprocess_image_bytes_into(data, size, arch, recipe, out.data(), limits, name);
    return out;
}

void preprocess_image_bytes_into(const std::uint8_t* data, std::size_t size, const Architecture& arch,
                                 const Preprocessing& recipe, float* out, const DecodeLimits& limits,
                                 const std::string& name) {
    check_recipe(arch, recipe);
    Plan p;
    const ImagePart part = decode_image_part(data, size, arch.channels, limits, name, [&](int width, int height) {
        p = plan(width, height, arch, recipe);
        return resize_source(width, height, p.resized_w, p.resized_h, recipe.interpolation, p.kept);
    });
    check(part.image, arch, recipe);
    normalise(resize(part.image, part.where, p.resized_w, p.resized_h, recipe.interpolation, p.kept), p, arch, recipe,
              out);
}

CropBox input_crop_box(int width, int height, const Architecture& arch, const Preprocessing& recipe) {
    if (width <= 0 || height <= 0) throw Error("input_crop_box: the image size is not positive");
    int resized_w = arch.image_width;
    int resized_h = arch.image_height;
    if (recipe.resize == Resize::shorter_then_crop)
        shorter_side_size(width, height, recipe.resize_size, resized_w, resized_h);
    if (recipe.resize == Resize::squash_then_crop) resized_w = resized_h = recipe.resize_size;
    const Span cols = centre_crop(resized_w, arch.image_width);
    const Span rows = centre_crop(resized_h, arch.image_height);
    const double sx = double(width) / resized_w, sy = double(height) / resized_h;
    return {cols.offset * sx, rows.offset * sy, cols.length * sx, rows.length * sy};
}

}  // namespace onevit
