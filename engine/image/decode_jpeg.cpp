// JPEG (libjpeg-turbo) to 8-bit grey or RGB, the pixels PIL gives.
//
// libjpeg reports errors by longjmp: it is driven from one function whose only
// automatic objects are trivially destructible, with all C++ state held by the
// caller, so a longjmp never skips a destructor.

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <string>
#include <vector>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "image/decoders.hpp"
#include "onevit/error.hpp"

namespace onevit {
namespace {

// Progressive JPEGs may carry thousands of tiny scans, each making libjpeg
// re-process the whole coefficient buffer; libjpeg-turbo advises capping them.
constexpr int kMaxJpegScans = 1000;

struct JpegErrors {
    jpeg_error_mgr pub;  // first, so a j_common_ptr's err casts to JpegErrors
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
    auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, errors->message);
    std::longjmp(errors->jump, 1);
}

// libjpeg only warns about corrupt or truncated data and fills in grey; we
// refuse such files. The warnings kept as warnings leave the pixels intact.
void jpeg_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;  // trace messages
    switch (cinfo->err->msg_code) {
        case JWRN_ADOBE_XFORM:
        case JWRN_BOGUS_ICC:
        case JWRN_EXTRANEOUS_DATA:
        case JWRN_JFIF_MAJOR:
            return;
        default:
            jpeg_fail(cinfo);
    }
}

void jpeg_progress(j_common_ptr cinfo) {
    auto* dinfo = reinterpret_cast<j_decompress_ptr>(cinfo);
    if (dinfo->input_scan_number > kMaxJpegScans) {
        auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
        std::snprintf(errors->message, sizeof errors->message, "more than %d progressive scans", kMaxJpegScans);
        std::longjmp(errors->jump, 1);
    }
}

struct JpegDecoder {
    jpeg_decompress_struct cinfo{};
    JpegErrors errors{};
    jpeg_progress_mgr progress{};
    std::vector<std::uint8_t> row;  // one CMYK scanline, or the last one where it is not kept
    const WantedRect* wanted = nullptr;
    ImagePart part;

    JpegDecoder() {
        cinfo.err = jpeg_std_error(&errors.pub);
        errors.pub.error_exit = jpeg_fail;
        errors.pub.emit_message = jpeg_message;
        progress.progress_monitor = jpeg_progress;
    }
    ~JpegDecoder() { jpeg_destroy_decompress(&cinfo); }  // safe on a zeroed cinfo too
    JpegDecoder(const JpegDecoder&) = delete;
    JpegDecoder& operator=(const JpegDecoder&) = delete;
};

// PIL reads 4-component JPEGs as Adobe-inverted CMYK ("CMYK;I"): its C is
// 255 - the stored C, its 255 - K the stored K.
void cmyk_row_to_rgb(const std::uint8_t* in, std::uint8_t* out, int width) {
    for (int x = 0; x < width; ++x, in += 4, out += 3)
        for (int c = 0; c < 3; ++c) out[c] = cmyk_channel(255 - in[c], in[3]);
}

// Returns false with d.errors.message set when libjpeg reports an error.
bool run_jpeg(JpegDecoder& d, const std::uint8_t* data, std::size_t size, const std::string& name,
              const DecodeLimits& limits) {
    j_decompress_ptr cinfo = &d.cinfo;
    if (setjmp(d.errors.jump)) return false;
    jpeg_create_decompress(cinfo);
    cinfo->progress = &d.progress;
    jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(cinfo, TRUE);
    check_size(name, cinfo->image_width, cinfo->image_height, limits);

    const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    if (cinfo->jpeg_color_space == JCS_GRAYSCALE)
        cinfo->out_color_space = JCS_GRAYSCALE;
    else if (cmyk)
        cinfo->out_color_space = JCS_CMYK;
    else
        cinfo->out_color_space = JCS_RGB;
    // PIL's JpegDecode.c keeps libjpeg's defaults (it changes them only in
    // draft mode); set them explicitly since the pixels depend on them.
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    jpeg_start_decompress(cinfo);

    const int width = static_cast<int>(cinfo->output_width);
    const int height = static_cast<int>(cinfo->output_height);
    SourcePart& where = d.part.where;
    where = {0, 0, width, height};
    int row_begin = 0, row_end = height;
    if (d.wanted) {
        const ResizeRegion want = (*d.wanted)(width, height);
        // Whole iMCUs (libjpeg's unit across) plus one each side: the upsampled
        // chroma at a cropped row's ends is the edge's, not the image's.
        const int margin = cinfo->max_h_samp_factor * DCTSIZE;
        JDIMENSION left = static_cast<JDIMENSION>(std::max(want.left - margin, 0));
        JDIMENSION cols = static_cast<JDIMENSION>(std::min(want.left + want.width + margin, width)) - left;
        if (cols < static_cast<JDIMENSION>(width)) jpeg_crop_scanline(cinfo, &left, &cols);
        where.left = static_cast<int>(left);
        where.top = row_begin = std::clamp(want.top, 0, height - 1);
        row_end = std::clamp(want.top + want.height, row_begin + 1, height);
    }
    Image& image = d.part.image;
    image.width = static_cast<int>(cinfo->output_width);
    image.height = row_end - row_begin;
    image.channels = cmyk ? 3 : cinfo->output_components;
    const std::size_t stride = static_cast<std::size_t>(image.width) * image.channels;
    image.pixels.resize(stride * image.height);
    if (cmyk) d.row.resize(static_cast<std::size_t>(image.width) * 4);
    // Skipped rows are entropy-decoded all the same: corrupt data there fails as ever.
    if (row_begin > 0) jpeg_skip_scanlines(cinfo, static_cast<JDIMENSION>(row_begin));
    while (cinfo->output_scanline < static_cast<JDIMENSION>(row_end)) {
        std::uint8_t* out = image.pixels.data() + stride * (cinfo->output_scanline - row_begin);
        JSAMPROW target = cmyk ? d.row.data() : out;
        jpeg_read_scanlines(cinfo, &target, 1);
        if (cmyk) cmyk_row_to_rgb(d.row.data(), out, image.width);
    }
    if (row_end < height) {
        // Skipping the rows below, as skipping above, entropy-decodes them;
        // skipping to the very end would not (libjpeg-turbo takes the rest as
        // read): the last row is read, so corrupt or missing data still fails.
        if (height - row_end > 1) jpeg_skip_scanlines(cinfo, static_cast<JDIMENSION>(height - row_end - 1));
        d.row.resize(static_cast<std::size_t>(image.width) * cinfo->output_components);
        JSAMPROW target = d.row.data();
        jpeg_read_scanlines(cinfo, &target, 1);
    }
    // Reads up to EOI, so a file cut after its last scanline is caught too.
    jpeg_finish_decompress(cinfo);
    return true;
}

}  // namespace

ImagePart decode_jpeg_part(const std::uint8_t* data, std::size_t size, const std::string& name,
                           const DecodeLimits& limits, const WantedRect* wanted) {
    JpegDecoder d;
    d.wanted = wanted;
    if (!run_jpeg(d, data, size, name, limits)) throw Error(name + ": bad JPEG: " + d.errors.message);
    return std::move(d.part);
}

Image decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name, const DecodeLimits& limits) {
    return decode_jpeg_part(data, size, name, limits, nullptr).image;
}

}  // namespace onevit
