#include "png_write.hpp"

#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "onevit/error.hpp"

namespace onevit::png {

namespace {

// libpng reports errors through a callback that must not return, and throwing
// through libpng's C frames is undefined: the callback keeps the message and
// longjmps back into encode(), as libpng documents.
struct ErrorState {
    char message[256] = "";
};

void on_error(png_structp png, png_const_charp message) {
    auto* state = static_cast<ErrorState*>(png_get_error_ptr(png));
    std::snprintf(state->message, sizeof state->message, "%s", message);
    png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

// The libpng calls, apart from anything with a destructor that the longjmp
// could skip. Returns false on a libpng error.
bool encode(png_structp png, png_infop info, std::FILE* file, const Image& image, png_text* chunks, int chunk_count,
            png_bytep* rows) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_init_io(png, file);
    png_set_IHDR(png, info, image.width, image.height, 8,
                 image.channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (chunk_count > 0) png_set_text(png, info, chunks, chunk_count);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
    return true;
}

}  // namespace

void write(const std::string& path, const Image& image, const std::vector<std::pair<std::string, std::string>>& text) {
    if (image.channels != 1 && image.channels != 3) throw Error(path + ": can only write grey or RGB images");
    if (image.width < 1 || image.height < 1 ||
        image.pixels.size() != std::size_t(image.width) * image.height * image.channels)
        throw Error(path + ": image size and pixel buffer disagree");
    std::vector<png_text> chunks(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
        chunks[i].key = const_cast<char*>(text[i].first.c_str());
        chunks[i].text = const_cast<char*>(text[i].second.c_str());
        chunks[i].text_length = text[i].second.size();
    }
    std::vector<png_bytep> rows(image.height);
    for (int y = 0; y < image.height; ++y)
        rows[y] = const_cast<png_bytep>(image.pixels.data() + std::size_t(y) * image.width * image.channels);

    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
    if (!file) throw Error(path + ": cannot create: " + std::strerror(errno));
    ErrorState state;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!info) {
        png_destroy_write_struct(&png, nullptr);
        throw Error(path + ": cannot start the PNG writer (out of memory)");
    }
    const bool encoded =
        encode(png, info, file.get(), image, chunks.data(), static_cast<int>(chunks.size()), rows.data());
    png_destroy_write_struct(&png, &info);
    if (!encoded) throw Error(path + ": cannot write the PNG: " + state.message);
    if (std::fflush(file.get()) != 0 || std::ferror(file.get()))
        throw Error(path + ": cannot write: " + std::strerror(errno));
}

}  // namespace onevit::png
