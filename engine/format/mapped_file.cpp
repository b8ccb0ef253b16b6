#include "format/mapped_file.hpp"

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
    if (path.empty()) throw Error("cannot open a file with an empty name");
    // c_str() would end the name at the NUL: a different file would open.
    if (const auto nul = path.find('\0'); nul != std::string::npos)
        throw Error(path.substr(0, nul) + "...: file name contains a NUL byte");
    // Only regular files are opened: opening a FIFO would wait for a writer,
    // and opening a device can have side effects. stat first, then open
    // non-blocking (in case the path changed in between), then check again.
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw Error(system_error(path, "cannot open"));
    if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) throw Error(system_error(path, "cannot open"));
    FileDescriptor guard{fd};
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

void MappedFile::release(const void* begin, std::size_t bytes) const {
    const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const std::uintptr_t from = (reinterpret_cast<std::uintptr_t>(begin) + page - 1) / page * page;
    const std::uintptr_t to = (reinterpret_cast<std::uintptr_t>(begin) + bytes) / page * page;
    // Advice only: if the kernel declines, the memory simply stays resident.
    if (to > from) ::madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

}  // namespace onevit
