#include "npy.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>

#include "onevit/error.hpp"

// Float data is copied between file and memory as raw bytes.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy.cpp assumes a little-endian host");

namespace onevit::npy {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = sizeof(kMagic) - 1;
constexpr std::size_t kDataAlignment = 64;
constexpr std::string_view kFloat32Descr = "<f4";

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

[[noreturn]] void fail_io(const std::string& what, const std::string& path) {
    throw Error(path + ": " + what + ": " + std::strerror(errno));
}

File open_file(const std::string& path, const char* mode) {
    File file(std::fopen(path.c_str(), mode));
    if (!file) fail_io("cannot open", path);
    return file;
}

// Both return at once for size 0: the buffer of an empty vector may be null,
// which fread/fwrite must not be given.
void read_exactly(std::FILE* file, void* buffer, std::size_t size, const std::string& path) {
    errno = 0;
    if (size == 0 || std::fread(buffer, 1, size, file) == size) return;
    if (std::ferror(file)) fail_io("cannot read", path);
    throw Error(path + ": file is truncated");
}

void write_all(std::FILE* file, const void* buffer, std::size_t size, const std::string& path) {
    if (size != 0 && std::fwrite(buffer, 1, size, file) != size) fail_io("cannot write", path);
}

std::uint32_t little_endian(const std::uint8_t* bytes, int count) {
    std::uint32_t value = 0;
    for (int i = count - 1; i >= 0; --i) value = (value << 8) | bytes[i];
    return value;
}

std::optional<std::int64_t> checked_product(const std::vector<std::int64_t>& factors) {
    std::int64_t product = 1;
    for (const std::int64_t factor : factors) {
        if (factor != 0 && product > std::numeric_limits<std::int64_t>::max() / factor) return std::nullopt;
        product *= factor;
    }
    return product;
}

struct Header {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::int64_t> shape;
    std::uint64_t data_start = 0;  // file offset of the first element
};

// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// numpy writes it with repr(), so only its three keys and the value forms repr()
// produces for them are accepted.
class HeaderParser {
public:
    HeaderParser(std::string_view text, const std::string& path) : text_(text), path_(path) {}

    Header parse() {
        Header header;
        bool seen_descr = false, seen_fortran_order = false, seen_shape = false;
        expect('{');
        while (!accept('}')) {
            const std::string key = parse_string();
            expect(':');
            if (key == "descr" && !seen_descr) {
                header.descr = parse_string();
                seen_descr = true;
            } else if (key == "fortran_order" && !seen_fortran_order) {
                header.fortran_order = parse_bool();
                seen_fortran_order = true;
            } else if (key == "shape" && !seen_shape) {
                header.shape = parse_shape();
                seen_shape = true;
            } else {
                fail("unexpected or repeated key '" + key + "'");
            }
            if (!accept(',')) {
                expect('}');
                break;
            }
        }
        skip_space();
        if (pos_ != text_.size()) fail("unexpected text after the header dict");
        if (!seen_descr || !seen_fortran_order || !seen_shape)
            fail("header needs the keys 'descr', 'fortran_order' and 'shape'");
        return header;
    }

private:
    [[noreturn]] void fail(const std::string& message) const {
        throw Error(path_ + ": malformed .npy header: " + message);
    }

    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n')) ++pos_;
    }

    bool accept(char c) {
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }

    void expect(char c) {
        if (!accept(c)) fail(std::string("expected '") + c + "'");
    }

    bool accept_word(std::string_view word) {
        skip_space();
        if (text_.substr(pos_, word.size()) != word) return false;
        pos_ += word.size();
        return true;
    }

    std::string parse_string() {
        skip_space();
        if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) fail("expected a string");
        const char quote = text_[pos_++];
        const std::size_t end = text_.find(quote, pos_);
        if (end == std::string_view::npos) fail("unterminated string");
        std::string value(text_.substr(pos_, end - pos_));
        pos_ = end + 1;
        return value;
    }

    bool parse_bool() {
        if (accept_word("True")) return true;
        if (accept_word("False")) return false;
        fail("expected True or False");
    }

    std::int64_t parse_dimension() {
        skip_space();
        const std::size_t start = pos_;
        std::int64_t value = 0;
        for (; pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9'; ++pos_) {
            const int digit = text_[pos_] - '0';
            if (value > (std::numeric_limits<std::int64_t>::max() - digit) / 10) fail("dimension too large");
            value = value * 10 + digit;
        }
        if (pos_ == start) fail("expected a non-negative integer in 'shape'");
        return value;
    }

    // "()", "(5,)", "(2, 3)", "(2, 3,)"
    std::vector<std::int64_t> parse_shape() {
        std::vector<std::int64_t> shape;
        expect('(');
        while (!accept(')')) {
            shape.push_back(parse_dimension());
            if (accept(')')) {
                if (shape.size() == 1) fail("a one-element shape needs a trailing comma");
                break;
            }
            expect(',');
        }
        return shape;
    }

    std::string_view text_;
    const std::string& path_;
    std::size_t pos_ = 0;
};

// Reads and checks everything before the data, leaving `file` at the data.
Header read_header(std::FILE* file, std::uint64_t file_size, const std::string& path) {
    // Magic, major, minor, then a u16 (version 1) or u32 (versions 2, 3) header length.
    std::uint8_t prefix[kMagicSize + 2 + 4] = {};
    const std::size_t prefix_size = file_size < sizeof(prefix) ? static_cast<std::size_t>(file_size) : sizeof(prefix);
    read_exactly(file, prefix, prefix_size, path);
    if (prefix_size < kMagicSize || std::memcmp(prefix, kMagic, kMagicSize) != 0)
        throw Error(path + ": not a .npy file (bad magic)");
    if (prefix_size < kMagicSize + 2) throw Error(path + ": file is truncated");
    const int major = prefix[kMagicSize], minor = prefix[kMagicSize + 1];
    if (major < 1 || major > 3 || minor != 0)
        throw Error(path + ": unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                    " (expected 1.0, 2.0 or 3.0)");
    const int length_bytes = major == 1 ? 2 : 4;
    const std::uint64_t text_start = kMagicSize + 2 + length_bytes;
    if (prefix_size < text_start) throw Error(path + ": file is truncated");
    const std::uint64_t text_size = little_endian(prefix + kMagicSize + 2, length_bytes);
    if (text_start + text_size > file_size)
        throw Error(path + ": file is truncated (header of " + std::to_string(text_size) + " bytes, file of " +
                    std::to_string(file_size) + ")");

    std::string text(text_size, '\0');
    if (std::fseek(file, static_cast<long>(text_start), SEEK_SET) != 0) fail_io("cannot read", path);
    read_exactly(file, text.data(), text.size(), path);
    Header header = HeaderParser(text, path).parse();
    header.data_start = text_start + text_size;
    return header;
}

}  // namespace

std::string shape_string(const std::vector<std::int64_t>& shape) {
    std::string text = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) text += ", ";
        text += std::to_string(shape[i]);
    }
    if (shape.size() == 1) text += ",";
    return text + ")";
}

Array read_float32(const std::string& path) {
    const File file = open_file(path, "rb");
    std::error_code error;
    const std::uintmax_t file_size = std::filesystem::file_size(path, error);
    if (error) throw Error(path + ": cannot read: " + error.message());
    const Header header = read_header(file.get(), file_size, path);

    if (header.descr != kFloat32Descr)
        throw Error(path + ": dtype '" + header.descr + "' is not supported (expected little-endian float32, '<f4')");
    if (header.fortran_order)
        throw Error(path + ": Fortran-order arrays are not supported (save a C-order array, np.ascontiguousarray)");
    const std::optional<std::int64_t> count = checked_product(header.shape);
    const std::optional<std::int64_t> data_size = count ? checked_product({*count, sizeof(float)}) : std::nullopt;
    if (!data_size) throw Error(path + ": shape " + shape_string(header.shape) + " is too large");
    if (static_cast<std::uint64_t>(*data_size) != file_size - header.data_start)
        throw Error(path + ": shape " + shape_string(header.shape) + " needs " + std::to_string(*data_size) +
                    " bytes of data, the file has " + std::to_string(file_size - header.data_start));

    Array array{header.shape, std::vector<float>(static_cast<std::size_t>(*count))};
    read_exactly(file.get(), array.data.data(), static_cast<std::size_t>(*data_size), path);
    return array;
}

void write_float32(const std::string& path, const Array& array) {
    const std::optional<std::int64_t> count = checked_product(array.shape);
    if (!count || static_cast<std::uint64_t>(*count) != array.data.size())
        throw Error(path + ": shape " + shape_string(array.shape) + " does not match " +
                    std::to_string(array.data.size()) + " values");

    std::string header = "{'descr': '" + std::string(kFloat32Descr) +
                         "', 'fortran_order': False, 'shape': " + shape_string(array.shape) + ", }";
    const std::size_t unpadded = kMagicSize + 2 + 2 + header.size() + 1;  // + the closing '\n'
    header.append((kDataAlignment - unpadded % kDataAlignment) % kDataAlignment, ' ');
    header += '\n';
    if (header.size() > std::numeric_limits<std::uint16_t>::max())
        throw Error(path + ": shape " + shape_string(array.shape) + " is too long for a .npy 1.0 header");

    std::string prefix(kMagic, kMagicSize);
    prefix += {'\x01', '\x00', static_cast<char>(header.size() & 0xff), static_cast<char>(header.size() >> 8)};

    const File file = open_file(path, "wb");
    write_all(file.get(), prefix.data(), prefix.size(), path);
    write_all(file.get(), header.data(), header.size(), path);
    write_all(file.get(), array.data.data(), array.data.size() * sizeof(float), path);
    if (std::fflush(file.get()) != 0) fail_io("cannot write", path);
}

}  // namespace onevit::npy
