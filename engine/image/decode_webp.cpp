// WebP (libwebp) to 8-bit RGB, the pixels PIL gives: like PIL, through
// libwebp's animation decoder in non-premultiplied RGBA (a still image is an
// animation of one frame; of an animation, the first frame on its canvas),
// then alpha dropped as convert('RGB') drops it.

#include <memory>
#include <string>

#include <webp/decode.h>
#include <webp/demux.h>

#include "image/decoders.hpp"
#include "onevit/error.hpp"

namespace onevit {

Image decode_webp(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits) {
    // The canvas size from the header, checked before anything is decoded.
    WebPBitstreamFeatures features;
    if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK)
        throw Error(name + ": bad WebP: cannot read its header");
    check_size(name, features.width, features.height, limits);

    WebPAnimDecoderOptions options;
    if (!WebPAnimDecoderOptionsInit(&options)) throw Error(name + ": bad WebP: libwebp version mismatch");
    options.color_mode = MODE_RGBA;
    options.use_threads = 0;
    const WebPData bytes{data, size};
    const std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> decoder(WebPAnimDecoderNew(&bytes, &options),
                                                                               WebPAnimDecoderDelete);
    WebPAnimInfo info;
    if (!decoder || !WebPAnimDecoderGetInfo(decoder.get(), &info))
        throw Error(name + ": bad WebP: cannot parse its chunks");
    check_size(name, info.canvas_width, info.canvas_height, limits);
    std::uint8_t* rgba = nullptr;
    int timestamp = 0;
    if (!WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp))
        throw Error(name + ": bad WebP: cannot decode its image data (truncated or corrupt)");

    Image image;
    image.width = static_cast<int>(info.canvas_width);
    image.height = static_cast<int>(info.canvas_height);
    image.channels = 3;
    const std::size_t pixels = std::size_t(image.width) * image.height;
    image.pixels.resize(pixels * 3);
    for (std::size_t i = 0; i < pixels; ++i)
        for (int c = 0; c < 3; ++c) image.pixels[3 * i + c] = rgba[4 * i + c];
    return image;
}

}  // namespace onevit
