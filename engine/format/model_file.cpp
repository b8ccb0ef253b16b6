#include "format/model_file.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "format/byte_reader.hpp"
#include "format/dequantize.hpp"
#include "format/metadata.hpp"
#include "format/tensor_records.hpp"
#include "onevit/error.hpp"

namespace onevit {

namespace {

constexpr std::uint8_t kMagic[8] = {'O', 'N', 'E', 'V', 'I', 'T', 0, 1};
constexpr std::uint32_t kMaxVersion = 2;  // 2: files that list features (weights/FORMAT.md)
constexpr std::size_t kFixedHeaderBytes = 32;
constexpr std::uint64_t kMaxFileBytes = 1ull << 50;  // sums of larger offsets could wrap
constexpr std::uint64_t kAlignment = 64;

std::uint32_t crc32_of(const std::uint8_t* data, std::uint64_t size) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (size > 0) {  // zlib takes 32-bit lengths
        const uInt chunk = static_cast<uInt>(std::min<std::uint64_t>(size, 1u << 30));
        crc = crc32(crc, data, chunk);
        data += chunk;
        size -= chunk;
    }
    return static_cast<std::uint32_t>(crc);
}

// The precision a weight stored as dtype was written for; Precision's order is f32, bf16, int8.
Precision precision_of(TensorDType dtype) {
    switch (dtype) {
        case TensorDType::f32:
            return Precision::f32;
        case TensorDType::bf16:
            return Precision::bf16;
        case TensorDType::int8:
            return Precision::int8;
    }
    return Precision::f32;
}

}  // namespace

std::int64_t element_count(const std::vector<std::int64_t>& dims) {
    std::int64_t n = 1;
    for (auto d : dims) n *= d;
    return n;
}

// A dtype's name is that of the precision it was written for.
const char* to_string(TensorDType dtype) { return to_string(precision_of(dtype)); }

ModelFile::ModelFile(std::string path, MappedFile file) : path_(std::move(path)), file_(std::move(file)) {}

Error ModelFile::truncated(const std::string& needs) const {
    return Error(path_ + ": truncated (" + std::to_string(file_.size()) + " bytes, " + needs + ")");
}

// The fixed header: magic, version, checksums, where the data starts.
void ModelFile::read_fixed_header() {
    const std::uint8_t* base = file_.data();
    const std::uint64_t file_size = file_.size();
    if (std::memcmp(base, kMagic, std::min<std::uint64_t>(file_size, sizeof kMagic)) != 0)
        throw Error(path_ + ": not an onevit model file (bad magic)");
    if (file_size < kFixedHeaderBytes)
        throw truncated("the header needs at least " + std::to_string(kFixedHeaderBytes));
    ByteReader fixed(base, file_size, path_);
    fixed.u64("magic");
    const std::uint32_t version = fixed.u32("version");
    if (version < 1 || version > kMaxVersion)
        throw Error(path_ + ": unsupported model file version " + std::to_string(version) +
                    " (this onevit reads 1 to " + std::to_string(kMaxVersion) + ")");
    version_ = version;
    const std::uint32_t header_crc = fixed.u32("header_crc");
    data_offset_ = fixed.u64("data_offset");
    data_crc_ = fixed.u32("data_crc");
    if (fixed.u32("reserved") != 0) fixed.fail("reserved field is not 0");
    if (data_offset_ < kFixedHeaderBytes || data_offset_ % kAlignment || data_offset_ > kMaxFileBytes)
        throw Error(path_ + ": data_offset " + std::to_string(data_offset_) +
                    " is not a 64-byte aligned offset between the fixed header and 2^50");
    if (data_offset_ > file_size) throw truncated("the header needs " + std::to_string(data_offset_));
    constexpr std::size_t kChecksummedFrom = 16;  // everything after header_crc itself
    if (crc32_of(base + kChecksummedFrom, data_offset_ - kChecksummedFrom) != header_crc)
        throw Error(path_ + ": header checksum mismatch (file corrupted or truncated)");
}

ModelFile ModelFile::open(const std::string& path, const DescribeTensors& expected) {
    ModelFile mf(path, MappedFile(path));
    mf.read_fixed_header();
    const std::uint8_t* base = mf.file_.data();
    ByteReader in(base + kFixedHeaderBytes, mf.data_offset_ - kFixedHeaderBytes, path + ": header");
    const Metadata meta = Metadata::read(in, path);
    ModelInfo& info = mf.info_;
    info.arch = read_architecture(meta, mf.version_);
    info.preprocess = read_preprocessing(meta, info.arch.channels);
    info.labels = read_labels(meta, info.arch.num_classes);
    info.embedding = read_embedding_description(meta);

    std::map<std::string, StoredTensor> stored = read_tensor_records(
        in, base + mf.data_offset_, mf.file_.size() - mf.data_offset_, [&](const std::string& name, std::uint64_t end) {
            // The header is checksummed: a tensor past the end is a file cut short
            // (or one whose writer lied, which the same words cover).
            return mf.truncated(
                "tensor " + name + " needs " +
                (end > kMaxFileBytes ? std::string("data beyond any file") : std::to_string(mf.data_offset_ + end)));
        });
    check_tensor_set(stored, expected(info.arch), path);
    for (auto& [name, tensor] : stored) {
        info.parameter_count += tensor.elements();
        info.stored_precision = std::max(info.stored_precision, precision_of(tensor.dtype));  // the most compact
        Entry entry;
        entry.stored = tensor;
        if (tensor.dtype == TensorDType::f32)
            entry.view = {tensor.dims, static_cast<const float*>(tensor.data)};
        else
            entry.widened = std::make_unique<Widened>();
        mf.tensors_.emplace(name, std::move(entry));
    }
    return mf;
}

const ModelFile::Entry& ModelFile::entry(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw Error(path_ + ": no tensor " + name);
    return it->second;
}

const StoredTensor& ModelFile::stored(const std::string& name) const { return entry(name).stored; }

const TensorView& ModelFile::tensor(const std::string& name) const {
    const Entry& e = entry(name);
    if (!e.widened) return e.view;
    Widened& w = *e.widened;
    std::lock_guard<std::mutex> lock(w.mutex);
    if (!w.view.data) {
        const StoredTensor& t = e.stored;
        w.buffer = PageBuffer(std::size_t(t.elements()));
        if (t.dtype == TensorDType::bf16)
            bf16_to_f32(t.bf16(), t.elements(), w.buffer.data());
        else
            dequantize_s8_rows(t.s8(), t.scales, t.dims[0], t.dims[1], w.buffer.data());
        w.view = {t.dims, w.buffer.data()};
    }
    return w.view;
}

void ModelFile::release(const std::string& name) const {
    const Entry& e = entry(name);
    if (e.widened) {
        std::lock_guard<std::mutex> lock(e.widened->mutex);
        e.widened->buffer = PageBuffer();
        e.widened->view.data = nullptr;
    }
    file_.release(e.stored.data, e.stored.nbytes);
}

void ModelFile::verify_data() const {
    const std::uint32_t crc = crc32_of(file_.data() + data_offset_, file_.size() - data_offset_);
    if (crc != data_crc_) throw Error(path_ + ": tensor data checksum mismatch (file corrupted)");
}

}  // namespace onevit
