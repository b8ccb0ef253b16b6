// JPEG (libjpeg-turbo) and PNG (libpng) decoding to 8-bit grey or RGB, giving
// the pixels PIL gives for Image.open(path).convert('RGB' or 'L').
//
// Both libraries report errors by longjmp. Each library is driven from one
// function whose only automatic objects are trivially destructible, with all
// C++ state held by the caller, so a longjmp never skips a destructor.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "onevit/error.hpp"
#include "onevit/image.hpp"

namespace onevit {
namespace {

// PIL's Convert.c L24: ITU-R 601-2 luma in 16-bit fixed point.
std::uint8_t luma(std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    return static_cast<std::uint8_t>((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

// Turns a decoded grey or RGB image into the requested channel count the way
// PIL's convert('RGB') (grey replicated) and convert('L') (luma) do.
void convert_channels(Image& image, int channels) {
    if (image.channels == channels) return;
    const std::size_t n = static_cast<std::size_t>(image.width) * image.height;
    std::vector<std::uint8_t>& p = image.pixels;
    if (channels == 3) {
        p.resize(n * 3);
        for (std::size_t i = n; i-- > 0;) p[3 * i] = p[3 * i + 1] = p[3 * i + 2] = p[i];
    } else {
        for (std::size_t i = 0; i < n; ++i) p[i] = luma(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
        p.resize(n);
        p.shrink_to_fit();
    }
    image.channels = channels;
}

void check_size(const std::string& name, std::int64_t width, std::int64_t height,
                const DecodeLimits& limits) {
    if (width <= 0 || height <= 0) throw Error(name + ": image has zero width or height");
    // width * height can overflow: PNG sizes are read as 32-bit before libpng checks them.
    if (width > limits.max_pixels / height)
        throw Error(name + ": image is " + std::to_string(width) + "x" + std::to_string(height) +
                    " pixels, over the limit of " + std::to_string(limits.max_pixels));
}

// ---------------------------------------------------------------- JPEG

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
        std::snprintf(errors->message, sizeof errors->message, "more than %d progressive scans",
                      kMaxJpegScans);
        std::longjmp(errors->jump, 1);
    }
}

struct JpegDecoder {
    jpeg_decompress_struct cinfo{};
    JpegErrors errors{};
    jpeg_progress_mgr progress{};
    std::vector<std::uint8_t> row;  // one CMYK scanline
    Image image;

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

// PIL reads 4-component JPEGs as Adobe-inverted CMYK ("CMYK;I") and converts
// them with Convert.c's cmyk2rgb. With k the stored K and c = 255 - stored C
// (PIL's C), that is out = k - k * c / 255 with MULDIV255's rounding.
void cmyk_row_to_rgb(const std::uint8_t* in, std::uint8_t* out, int width) {
    for (int x = 0; x < width; ++x, in += 4, out += 3) {
        const int k = in[3];
        for (int c = 0; c < 3; ++c) {
            const int t = (255 - in[c]) * k + 128;
            out[c] = static_cast<std::uint8_t>(k - (((t >> 8) + t) >> 8));
        }
    }
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

    Image& image = d.image;
    image.width = static_cast<int>(cinfo->output_width);
    image.height = static_cast<int>(cinfo->output_height);
    image.channels = cmyk ? 3 : cinfo->output_components;
    const std::size_t stride = static_cast<std::size_t>(image.width) * image.channels;
    image.pixels.resize(stride * image.height);
    if (cmyk) d.row.resize(static_cast<std::size_t>(image.width) * 4);
    while (cinfo->output_scanline < cinfo->output_height) {
        std::uint8_t* out = image.pixels.data() + stride * cinfo->output_scanline;
        JSAMPROW target = cmyk ? d.row.data() : out;
        jpeg_read_scanlines(cinfo, &target, 1);
        if (cmyk) cmyk_row_to_rgb(d.row.data(), out, image.width);
    }
    // Reads up to EOI, so a file cut after its last scanline is caught too.
    jpeg_finish_decompress(cinfo);
    return true;
}

Image decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name,
                  const DecodeLimits& limits) {
    JpegDecoder d;
    if (!run_jpeg(d, data, size, name, limits))
        throw Error(name + ": bad JPEG: " + d.errors.message);
    return std::move(d.image);
}

// ---------------------------------------------------------------- PNG

struct PngDecoder {
    png_structp png = nullptr;
    png_infop info = nullptr;
    const std::uint8_t* data = nullptr;
    std::size_t size = 0;
    std::size_t pos = 0;
    char message[256] = {};
    std::vector<png_bytep> rows;
    Image image;

    PngDecoder() = default;
    ~PngDecoder() { png_destroy_read_struct(&png, &info, nullptr); }  // accepts nulls
    PngDecoder(const PngDecoder&) = delete;
    PngDecoder& operator=(const PngDecoder&) = delete;
};

[[noreturn]] void png_fail(png_structp png, png_const_charp message) {
    auto* d = static_cast<PngDecoder*>(png_get_error_ptr(png));
    std::snprintf(d->message, sizeof d->message, "%s", message);
    png_longjmp(png, 1);
}

// libpng warns about things PIL ignores too (bad sRGB profiles, ancillary
// chunk CRCs); damaged image data is an error, not a warning.
void png_ignore_warning(png_structp, png_const_charp) {}

void png_read_bytes(png_structp png, png_bytep out, png_size_t count) {
    auto* d = static_cast<PngDecoder*>(png_get_io_ptr(png));
    if (count > d->size - d->pos) png_error(png, "file is truncated");
    std::memcpy(out, d->data + d->pos, count);
    d->pos += count;
}

bool run_png(PngDecoder& d) {
    if (setjmp(png_jmpbuf(d.png))) return false;
    png_set_read_fn(d.png, &d, png_read_bytes);
    png_read_info(d.png, d.info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(d.png, d.info, &width, &height, &bit_depth, &color_type, nullptr, nullptr,
                 nullptr);

    // To 8-bit grey or RGB, alpha dropped as PIL's convert('RGB') drops it.
    // 16-bit samples keep their high byte, as PIL's ";16B" unpackers do.
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(d.png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(d.png);
    if (bit_depth == 16) png_set_strip_16(d.png);
    png_set_strip_alpha(d.png);
    png_set_interlace_handling(d.png);
    png_read_update_info(d.png, d.info);

    Image& image = d.image;
    image.width = static_cast<int>(width);
    image.height = static_cast<int>(height);
    image.channels = png_get_channels(d.png, d.info);
    const std::size_t stride = static_cast<std::size_t>(image.width) * image.channels;
    if ((image.channels != 1 && image.channels != 3) || png_get_rowbytes(d.png, d.info) != stride)
        png_error(d.png, "unexpected pixel layout after conversion to 8-bit");
    image.pixels.resize(stride * image.height);
    d.rows.resize(image.height);
    for (int y = 0; y < image.height; ++y) d.rows[y] = image.pixels.data() + stride * y;
    png_read_image(d.png, d.rows.data());
    return true;
}

std::uint32_t big_endian_u32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

Image decode_png(const std::uint8_t* data, std::size_t size, const std::string& name,
                 const DecodeLimits& limits) {
    // png_read_info reads every chunk up to the image data, so the size is
    // checked here, from IHDR, which the PNG specification places first.
    if (size < 24 || std::memcmp(data + 12, "IHDR", 4) != 0)
        throw Error(name + ": bad PNG: no IHDR chunk at the start");
    check_size(name, big_endian_u32(data + 16), big_endian_u32(data + 20), limits);

    PngDecoder d;
    d.data = data;
    d.size = size;
    d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, png_fail, png_ignore_warning);
    if (d.png) d.info = png_create_info_struct(d.png);
    if (!d.png || !d.info) throw Error(name + ": out of memory starting the PNG decoder");
    if (!run_png(d)) throw Error(name + ": bad PNG: " + d.message);
    return std::move(d.image);
}

// ---------------------------------------------------------------- dispatch

bool starts_with(const std::uint8_t* data, std::size_t size, const std::uint8_t* magic,
                 std::size_t n) {
    return size >= n && std::memcmp(data, magic, n) == 0;
}

Image decode(const std::uint8_t* data, std::size_t size, int channels, const DecodeLimits& limits,
             const std::string& name) {
    if (channels != 1 && channels != 3)
        throw Error(name + ": cannot decode to " + std::to_string(channels) + " channels (1 or 3)");
    if (size == 0) throw Error(name + ": file is empty");
    static const std::uint8_t jpeg_magic[] = {0xFF, 0xD8, 0xFF};
    static const std::uint8_t png_magic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    Image image;
    try {
        if (starts_with(data, size, jpeg_magic, sizeof jpeg_magic))
            image = decode_jpeg(data, size, name, limits);
        else if (starts_with(data, size, png_magic, sizeof png_magic))
            image = decode_png(data, size, name, limits);
        else
            throw Error(name + ": not a JPEG or PNG file");
        convert_channels(image, channels);
    } catch (const std::bad_alloc&) {  // an image within the limits, but not within this machine's memory
        throw Error(name + ": out of memory decoding the image");
    }
    return image;
}

// No JPEG or PNG of at most max_pixels pixels is anywhere near this large (16-bit
// RGBA stored uncompressed is 8 bytes a pixel); a larger file is refused
// before it is read into memory.
std::int64_t max_file_bytes(const DecodeLimits& limits) {
    constexpr std::int64_t kMetadata = 16 << 20, kPerPixel = 16;
    if (limits.max_pixels > (std::numeric_limits<std::int64_t>::max() - kMetadata) / kPerPixel)
        return std::numeric_limits<std::int64_t>::max();
    return std::max<std::int64_t>(limits.max_pixels, 0) * kPerPixel + kMetadata;
}

std::vector<std::uint8_t> read_file(const std::string& path, const DecodeLimits& limits) {
    if (path.empty()) throw Error("cannot open an image with an empty file name");
    // c_str() would end the name at the NUL: a different file would open.
    if (const auto nul = path.find('\0'); nul != std::string::npos)
        throw Error(path.substr(0, nul) + "...: file name contains a NUL byte");
    // Only regular files are opened: opening a FIFO would wait for a writer,
    // and opening a device can have side effects. stat first, then open
    // non-blocking (in case the path changed in between), then check again.
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    if (::fstat(fd, &st) != 0) throw Error(path + ": cannot stat: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
    if (st.st_size > max_file_bytes(limits))
        throw Error(path + ": file is " + std::to_string(st.st_size) + " bytes, too large for an image of at most " +
                    std::to_string(limits.max_pixels) + " pixels");
    std::vector<std::uint8_t> bytes;
    try {
        bytes.resize(static_cast<std::size_t>(st.st_size));
    } catch (const std::bad_alloc&) {
        throw Error(path + ": out of memory reading " + std::to_string(st.st_size) + " bytes");
    }
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(path + ": read failed: " + std::strerror(errno));
        if (n == 0) throw Error(path + ": file shrank while being read");
        done += static_cast<std::size_t>(n);
    }
    return bytes;
}

}  // namespace

Image decode_image(const std::string& path, int channels, const DecodeLimits& limits) {
    const std::vector<std::uint8_t> bytes = read_file(path, limits);
    return decode(bytes.data(), bytes.size(), channels, limits, path);
}

Image decode_image_bytes(const std::uint8_t* data, std::size_t size, int channels,
                         const DecodeLimits& limits) {
    return decode(data, size, channels, limits, "image data");
}

}  // namespace onevit
