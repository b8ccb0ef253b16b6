// Image files to 8-bit grey or RGB pixels, as PIL's Image.open(path).convert('RGB' or 'L')
// gives them: the format is told by its magic bytes and decoded by its decoder
// (image/decoders.hpp), then converted to the channels asked for.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "image/decoders.hpp"
#include "onevit/error.hpp"
#include "onevit/image.hpp"

namespace onevit {
namespace {}  // namespace

namespace {

// PIL's Convert.c L24: ITU-R 601-2 luma in 16-bit fixed point.
std::uint8_t luma(const std::uint8_t* rgb) {
    return static_cast<std::uint8_t>((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

}  // namespace

Image convert_channels(Image image, int channels) {
    const int from = image.channels;
    if (channels != 1 && channels != 3)
        throw Error("cannot convert an image to " + std::to_string(channels) + " channels (1 or 3)");
    if (from < 1 || from > 4) throw Error("cannot convert an image of " + std::to_string(from) + " channels (1 to 4)");
    const std::size_t n = static_cast<std::size_t>(image.width) * image.height;
    if (image.width < 0 || image.height < 0 || image.pixels.size() != n * from)
        throw Error("image size and pixel buffer disagree");
    if (from == channels) return image;
    std::vector<std::uint8_t> out(n * channels);
    const std::uint8_t* in = image.pixels.data();
    for (std::size_t i = 0; i < n; ++i, in += from) {
        const std::uint8_t grey = from <= 2 ? in[0] : luma(in);
        if (channels == 1)
            out[i] = grey;
        else if (from <= 2)
            out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = grey;
        else
            for (int c = 0; c < 3; ++c) out[3 * i + c] = in[c];
    }
    image.pixels = std::move(out);
    image.channels = channels;
    return image;
}

void check_size(const std::string& name, std::int64_t width, std::int64_t height, const DecodeLimits& limits) {
    if (width <= 0 || height <= 0) throw Error(name + ": image has zero width or height");
    if (width > std::numeric_limits<int>::max() || height > std::numeric_limits<int>::max())
        throw Error(name + ": image is " + std::to_string(width) + "x" + std::to_string(height) +
                    " pixels, a side over " + std::to_string(std::numeric_limits<int>::max()));
    // width * height can overflow: sizes are read as 32-bit before the libraries check them.
    if (width > limits.max_pixels / height)
        throw Error(name + ": image is " + std::to_string(width) + "x" + std::to_string(height) +
                    " pixels, over the limit of " + std::to_string(limits.max_pixels));
}

namespace {

bool starts_with(const std::uint8_t* data, std::size_t size, const std::uint8_t* magic, std::size_t n) {
    return size >= n && std::memcmp(data, magic, n) == 0;
}

// The whole image, or where `wanted` is given the part of it that holds its rectangle.
ImagePart decode_part(const std::uint8_t* data, std::size_t size, int channels, const DecodeLimits& limits,
                      const std::string& name, const WantedRect* wanted) {
    if (channels != 1 && channels != 3)
        throw Error(name + ": cannot decode to " + std::to_string(channels) + " channels (1 or 3)");
    if (size == 0) throw Error(name + ": file is empty");
    static const std::uint8_t jpeg_magic[] = {0xFF, 0xD8, 0xFF};
    static const std::uint8_t png_magic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    static const std::uint8_t riff_magic[] = {'R', 'I', 'F', 'F'}, webp_magic[] = {'W', 'E', 'B', 'P'};
    static const std::uint8_t bmp_magic[] = {'B', 'M'};
    // Classic TIFF and BigTIFF, little- and big-endian.
    static const std::uint8_t tiff_magic[][4] = {
        {'I', 'I', 42, 0}, {'M', 'M', 0, 42}, {'I', 'I', 43, 0}, {'M', 'M', 0, 43}};
    const bool tiff = std::any_of(std::begin(tiff_magic), std::end(tiff_magic),
                                  [&](const std::uint8_t* magic) { return starts_with(data, size, magic, 4); });
    const bool jpeg = starts_with(data, size, jpeg_magic, sizeof jpeg_magic);
    ImagePart part;
    Image& image = part.image;
    try {
        if (jpeg)
            part = decode_jpeg_part(data, size, name, limits, wanted);
        else if (starts_with(data, size, png_magic, sizeof png_magic))
            image = decode_png(data, size, name, limits);
        else if (starts_with(data, size, riff_magic, 4) && size >= 12 && starts_with(data + 8, size - 8, webp_magic, 4))
            image = decode_webp(data, size, name, limits);
        else if (starts_with(data, size, bmp_magic, sizeof bmp_magic))
            image = decode_bmp(data, size, name, limits);
        else if (tiff)
            image = decode_tiff(data, size, name, limits);
        else
            throw Error(name + ": not a JPEG, PNG, WebP, BMP or TIFF file");
        if (!jpeg) {  // decoded whole; `wanted` is still told the size (its caller plans by it)
            part.where = {0, 0, image.width, image.height};
            if (wanted) (*wanted)(image.width, image.height);
        }
        image = convert_channels(std::move(image), channels);
    } catch (const std::bad_alloc&) {  // an image within the limits, but not within this machine's memory
        throw Error(name + ": out of memory decoding the image");
    }
    return part;
}

Image decode(const std::uint8_t* data, std::size_t size, int channels, const DecodeLimits& limits,
             const std::string& name) {
    return decode_part(data, size, channels, limits, name, nullptr).image;
}

// No image file of at most max_pixels pixels is anywhere near this large (16-bit
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

Image decode_image_fd(int fd, const std::string& name, int channels, const DecodeLimits& limits) {
    const std::int64_t most = max_file_bytes(limits);
    std::vector<std::uint8_t> bytes;
    std::size_t done = 0;
    try {
        for (;;) {
            if (done == bytes.size())
                bytes.resize(
                    std::size_t(std::min<std::int64_t>(std::max<std::size_t>(2 * bytes.size(), 1 << 16), most + 1)));
            const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw Error(name + ": read failed: " + std::strerror(errno));
            if (n == 0) break;
            done += std::size_t(n);
            if (std::int64_t(done) > most)
                throw Error(name + ": more than " + std::to_string(most) +
                            " bytes, too large for an image of at most " + std::to_string(limits.max_pixels) +
                            " pixels");
        }
    } catch (const std::bad_alloc&) {
        throw Error(name + ": out of memory reading " + std::to_string(done) + " bytes");
    }
    return decode(bytes.data(), done, channels, limits, name);
}

const std::vector<std::string>& image_file_extensions() {
    static const std::vector<std::string> extensions = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"};
    return extensions;
}

bool has_image_extension(const std::string& path) {
    const std::size_t dot = path.rfind('.');
    if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return false;
    std::string extension = path.substr(dot);
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const auto& known = image_file_extensions();
    return std::find(known.begin(), known.end(), extension) != known.end();
}

Image decode_image_bytes(const std::uint8_t* data, std::size_t size, int channels, const DecodeLimits& limits,
                         const std::string& name) {
    return decode(data, size, channels, limits, name);
}

ImagePart decode_image_part(const std::uint8_t* data, std::size_t size, int channels, const DecodeLimits& limits,
                            const std::string& name, const WantedRect& wanted) {
    return decode_part(data, size, channels, limits, name, &wanted);
}

}  // namespace onevit
