#include "mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "onevit/error.hpp"

namespace onevit {

namespace {

struct FileDescriptor {
    int fd;
    ~FileDescriptor() { ::close(fd); }
};

std::string system_error(const std::string& path, const char* what) {
    return path + ": " + what + ": " + std::strerror(errno);
}

}  // namespace

MappedFile::MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(system_error(path, "cannot open"));
    FileDescriptor guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw Error(system_error(path, "cannot stat"));
    if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
    if (st.st_size == 0) throw Error(path + ": file is empty");
    size_ = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) throw Error(system_error(path, "cannot map"));
    data_ = static_cast<const std::uint8_t*>(p);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

}  // namespace onevit
