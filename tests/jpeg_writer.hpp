// JPEG files written with libjpeg, for the image tests.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <vector>

// jpeglib.h needs size_t and FILE declared first.
#include <cstdio>

#include <jpeglib.h>

#include "onevit/image.hpp"

namespace onevit::test_support {

// `image` (grey or RGB) at quality 90; luma_sampling is the luma component's
// horizontal and vertical sampling factors (libjpeg's default {2, 2}: 4:2:0;
// {1, 1}: 4:4:4; {2, 1}: 4:2:2).
inline std::vector<std::uint8_t> write_jpeg(const Image& image, bool progressive, int h_samp = 2, int v_samp = 2) {
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr err{};
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_compress(&cinfo);
    unsigned char* buffer = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = image.width;
    cinfo.image_height = image.height;
    cinfo.input_components = image.channels;
    cinfo.in_color_space = image.channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 90, TRUE);
    if (image.channels == 3) {
        cinfo.comp_info[0].h_samp_factor = h_samp;
        cinfo.comp_info[0].v_samp_factor = v_samp;
    }
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    const std::size_t stride = static_cast<std::size_t>(image.width) * image.channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(image.pixels.data() + stride * cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    std::vector<std::uint8_t> out(buffer, buffer + size);
    std::free(buffer);
    return out;
}

}  // namespace onevit::test_support
