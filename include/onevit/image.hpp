// Decoding images and turning them into model input, as the model file's
// preprocessing recipe says (matching PIL + torchvision to within a grey level).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "onevit/model_info.hpp"

namespace onevit {

// 8-bit interleaved pixels, height × width × channels (1 = grey, 3 = RGB).
struct Image {
    int width = 0;
    int height = 0;
    int channels = 0;
    std::vector<std::uint8_t> pixels;
};

struct DecodeLimits {
    std::int64_t max_pixels = 100'000'000;  // refused before any pixel is decoded
};

// Decodes a JPEG, PNG, WebP, BMP or TIFF file to 8-bit RGB (channels = 3) or
// grey (channels = 1), the pixels PIL's Image.open(path).convert('RGB' or 'L')
// gives (alpha dropped, palettes looked up; a layout PIL does not decode the
// same way is refused by name). Throws onevit::Error naming the file.
Image decode_image(const std::string& path, int channels = 3, const DecodeLimits& = {});
// The same for a file's bytes in memory; `name` starts the messages.
Image decode_image_bytes(const std::uint8_t* data, std::size_t size, int channels = 3, const DecodeLimits& = {},
                         const std::string& name = "image data");
// The same for a file read to its end from a file descriptor: a pipe, or stdin
// (fd 0, for a command's "-" argument); `name` starts the messages.
Image decode_image_fd(int fd, const std::string& name, int channels = 3, const DecodeLimits& = {});

// The file name extensions of the formats decode_image reads, lower case with
// the dot (.jpg .jpeg .png .webp .bmp .tif .tiff), and whether `path` ends in
// one of them, in any case: how a directory's image files are told apart.
const std::vector<std::string>& image_file_extensions();
bool has_image_extension(const std::string& path);

// The image with `channels` channels (1 grey or 3 RGB) from one of 1 (grey),
// 2 (grey + alpha), 3 (RGB) or 4 (RGBA), as PIL's convert('L') / convert('RGB')
// makes it: alpha dropped, grey replicated, RGB to ITU-R 601-2 luma. Throws
// onevit::Error for other channel counts or pixels that do not fit the size.
Image convert_channels(Image image, int channels);

// Resize (+ centre crop), scale to [0,1], normalise: a C × H × W float tensor
// of the model's input size, ready for Model::run.
std::vector<float> preprocess(const Image& image, const Architecture& arch, const Preprocessing& recipe);

// decode_image_bytes(data, size, arch.channels, limits, name) then preprocess:
// the same tensor to the bit, for less work where the recipe crops: a JPEG
// decodes only the blocks around the rows and columns the resize reads.
std::vector<float> preprocess_image_bytes(const std::uint8_t* data, std::size_t size, const Architecture& arch,
                                          const Preprocessing& recipe, const DecodeLimits& limits = {},
                                          const std::string& name = "image data");
// The same, written into `out` (arch.channels × image_height × image_width
// floats, every one written; nothing written when it throws): for a caller whose
// input buffers already exist (the server's image slots), no tensor of its own.
void preprocess_image_bytes_into(const std::uint8_t* data, std::size_t size, const Architecture& arch,
                                 const Preprocessing& recipe, float* out, const DecodeLimits& limits = {},
                                 const std::string& name = "image data");

// Where preprocess's input lies in an image of width × height pixels: the
// rectangle, in the image's pixel coordinates, that the resize maps onto the
// model's input (beyond the image's edges where the crop pads it). For drawing
// on the original image what the model saw.
struct CropBox {
    double left = 0, top = 0, width = 0, height = 0;
};
CropBox input_crop_box(int width, int height, const Architecture& arch, const Preprocessing& recipe);

}  // namespace onevit
