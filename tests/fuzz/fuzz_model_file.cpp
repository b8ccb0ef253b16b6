// libFuzzer target: arbitrary bytes as a .ovit model file.
//
// The bytes go to a memfd (a regular file without a disk) and are opened by
// path, as the engine opens every model. Before that both checksums are
// recomputed whenever data_offset allows it: otherwise almost every mutation
// would stop at the header checksum, and the parser behind it would never be
// reached (the checksum check itself is covered by tests/test_model_file.cpp
// and tests/test_hostile.cpp).
//
// A file that opens has every tensor read end to end and its data checksum
// verified. Small ones (the synthetic seeds of fuzz_seeds) are also loaded as
// a Model — which creates oneDNN primitives, so it is too slow for every
// input — and run once when their attention matrix is small.
//
// Properties checked: no crash, no sanitizer report, no hang, and every
// failure is an onevit::Error with a non-empty message.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "format/model_file.hpp"
#include "model/open_model_file.hpp"
#include "onevit/error.hpp"
#include "onevit/model.hpp"
#include "synthetic.hpp"

namespace {

constexpr std::size_t kMaxLoadBytes = 16 * 1024;  // Model::load only below this
constexpr std::int64_t kMaxRunTokens = 64;        // and Model::run only below this

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "fuzz_model_file: %s\n", what);
    std::abort();
}

int memfd() {
    static const int fd = [] {
        const int fd = ::memfd_create("fuzz.ovit", MFD_CLOEXEC);
        if (fd < 0) die("memfd_create failed");
        return fd;
    }();
    return fd;
}

void write_file(const std::uint8_t* data, std::size_t size) {
    const int fd = memfd();
    if (::ftruncate(fd, 0) != 0) die("ftruncate failed");
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
        if (n <= 0) die("pwrite failed");
        done += static_cast<std::size_t>(n);
    }
}

void check_message(const onevit::Error& e) {
    if (e.what() == nullptr || e.what()[0] == '\0') die("onevit::Error with an empty message");
}

volatile float sink;

// ONEVIT_FUZZ_VERBOSE=1: print each refusal (to see why an input is refused).
bool verbose() {
    static const bool on = std::getenv("ONEVIT_FUZZ_VERBOSE") != nullptr;
    return on;
}

void exercise(const std::string& path, std::size_t size) {
    onevit::ModelFile file = onevit::open_model_file(path);
    const onevit::ModelInfo& info = file.info();
    if (!info.labels.empty() && info.labels.size() != static_cast<std::size_t>(info.arch.num_classes))
        die("labels and num_classes disagree");
    std::int64_t parameters = 0;
    for (const char* name : {"patch_embed.weight", "prefix_tokens", "pos_embed", "head.weight", "head.bias"}) {
        const onevit::TensorView& t = file.tensor(name);
        float sum = 0.f;
        for (std::int64_t i = 0; i < t.elements(); ++i) sum += t.data[i];
        sink = sum;
        parameters += t.elements();
    }
    if (parameters > info.parameter_count) die("parameter_count is too small");
    // A bf16/int8 linear weight as stored, every byte of it (scales included),
    // then widened again after a release.
    const onevit::StoredTensor& head = file.stored("head.weight");
    const auto* bytes = static_cast<const std::uint8_t*>(head.data);
    std::uint8_t checksum = 0;
    for (std::uint64_t i = 0; i < head.nbytes; ++i) checksum ^= bytes[i];
    sink = checksum;
    file.release("head.weight");
    sink = file.tensor("head.weight").data[file.tensor("head.weight").elements() - 1];
    if (static_cast<std::uint64_t>(info.parameter_count) * 4 > size) die("tensors larger than the file");
    file.verify_data();  // resealed, so it passes; it must not read out of bounds

    if (size > kMaxLoadBytes) return;
    onevit::Options options;
    options.threads = 1;
    const onevit::Model model = onevit::Model::load(path, options);
    const onevit::Architecture& a = model.info().arch;
    if (a.tokens() > kMaxRunTokens) return;
    std::vector<float> input(static_cast<std::size_t>(a.channels) * a.image_height * a.image_width, 0.25f);
    const std::vector<float> logits = model.run(input.data(), 1);
    if (logits.size() != static_cast<std::size_t>(a.num_classes)) die("wrong number of logits");
    const auto top = onevit::top_k(logits.data(), a.num_classes, 3, model.info().labels);
    if (top.empty()) die("top_k returned nothing");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    onevit::synthetic::Bytes bytes(data, data + size);
    onevit::synthetic::reseal(bytes);
    write_file(bytes.data(), bytes.size());
    const std::string path = "/proc/self/fd/" + std::to_string(memfd());
    try {
        exercise(path, bytes.size());
    } catch (const onevit::Error& e) {
        check_message(e);
        if (verbose()) std::fprintf(stderr, "fuzz_model_file: refused: %s\n", e.what());
    }
    return 0;
}
