#include "format/tensor_records.hpp"

#include <cmath>
#include <limits>

#include "onevit/error.hpp"

namespace onevit {

namespace {

constexpr std::uint32_t kMaxTensors = 4096;
constexpr std::uint32_t kMaxNameLength = 256;
constexpr std::uint64_t kAlignment = 64;

std::uint64_t aligned(std::uint64_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

// The record's nbytes for `elements` values of `dtype` in `rows` rows.
std::uint64_t stored_bytes(TensorDType dtype, std::uint64_t elements, std::uint64_t rows) {
    switch (dtype) {
        case TensorDType::f32:
            return elements * 4;
        case TensorDType::bf16:
            return elements * 2;
        case TensorDType::int8:
            return aligned(elements) + rows * 4;  // s8 values, padding, f32 scales
    }
    return 0;
}

std::string shape_string(const std::vector<std::int64_t>& dims) {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

using CutShort = std::function<Error(const std::string& name, std::uint64_t end)>;

StoredTensor read_record(ByteReader& in, const std::string& name, const std::uint8_t* data, std::uint64_t data_bytes,
                         std::uint64_t& next_free, const CutShort& cut_short) {
    StoredTensor stored;
    const std::uint32_t dtype_code = in.u32("tensor dtype");
    if (dtype_code > static_cast<std::uint32_t>(TensorDType::int8))
        in.fail(name + ": unsupported dtype " + std::to_string(dtype_code));
    stored.dtype = static_cast<TensorDType>(dtype_code);
    const std::uint32_t ndim = in.u32("tensor ndim");
    if (ndim < 1 || ndim > 4) in.fail(name + ": ndim " + std::to_string(ndim) + " is not in 1..4");
    if (stored.dtype == TensorDType::int8 && ndim != 2)
        in.fail(name + ": an int8 tensor needs 2 dimensions (rows of per-row scales), not " + std::to_string(ndim));
    std::uint64_t elements = 1;
    for (std::uint32_t d = 0; d < ndim; ++d) {
        const std::uint64_t dim = in.u64("tensor dim");
        if (dim < 1 || dim > (1ull << 32)) in.fail(name + ": dimension " + std::to_string(dim) + " out of range");
        if (elements > std::numeric_limits<std::uint64_t>::max() / dim / 4) in.fail(name + ": size overflows");
        elements *= dim;
        stored.dims.push_back(static_cast<std::int64_t>(dim));
    }
    const std::uint64_t offset = in.u64("tensor offset");
    const std::uint64_t nbytes = in.u64("tensor nbytes");
    const std::uint64_t expected_bytes = stored_bytes(stored.dtype, elements, std::uint64_t(stored.dims[0]));
    if (nbytes != expected_bytes)
        in.fail(name + ": nbytes " + std::to_string(nbytes) + " does not match its shape and dtype " +
                to_string(stored.dtype) + " (" + std::to_string(expected_bytes) + ")");
    if (offset % kAlignment) in.fail(name + ": offset " + std::to_string(offset) + " is not 64-byte aligned");
    if (offset < next_free) in.fail(name + ": overlaps the previous tensor or is out of order");
    if (offset > data_bytes || nbytes > data_bytes - offset)
        throw cut_short(name, offset > (1ull << 62) || nbytes > (1ull << 62) ? ~0ull : offset + nbytes);
    next_free = offset + nbytes;
    stored.data = data + offset;
    stored.nbytes = nbytes;
    if (stored.dtype == TensorDType::int8)
        stored.scales = reinterpret_cast<const float*>(data + offset + aligned(elements));
    return stored;
}

}  // namespace

std::map<std::string, StoredTensor> read_tensor_records(ByteReader& in, const std::uint8_t* data,
                                                        std::uint64_t data_bytes, const CutShort& cut_short) {
    std::map<std::string, StoredTensor> tensors;
    const std::uint32_t count = in.u32("tensor count");
    if (count > kMaxTensors) in.fail("tensor count " + std::to_string(count) + " is too large");
    std::uint64_t next_free = 0;  // tensors are ordered and disjoint
    for (std::uint32_t i = 0; i < count; ++i) {
        std::string name = in.string("tensor name", kMaxNameLength);
        if (name.empty()) in.fail("empty tensor name");
        if (tensors.count(name)) in.fail("duplicate tensor " + name);
        StoredTensor stored = read_record(in, name, data, data_bytes, next_free, cut_short);
        tensors.emplace(std::move(name), std::move(stored));
    }
    return tensors;
}

void check_tensor_set(const std::map<std::string, StoredTensor>& tensors, const ExpectedTensors& expected,
                      const std::string& path) {
    std::string missing, unexpected;
    for (const auto& [name, want] : expected) {
        auto it = tensors.find(name);
        if (it == tensors.end())
            missing += (missing.empty() ? "" : ", ") + name;
        else if (it->second.dims != want.dims)
            throw Error(path + ": tensor " + name + " has shape " + shape_string(it->second.dims) +
                        ", the architecture needs " + shape_string(want.dims));
    }
    for (const auto& entry : tensors)
        if (!expected.count(entry.first)) unexpected += (unexpected.empty() ? "" : ", ") + entry.first;
    if (!missing.empty()) throw Error(path + ": missing tensors: " + missing);
    if (!unexpected.empty()) throw Error(path + ": unexpected tensors: " + unexpected);

    for (const auto& [name, t] : tensors) {
        if (t.dtype != TensorDType::f32 && !expected.at(name).linear_weight)
            throw Error(path + ": tensor " + name + " has dtype " + std::to_string(static_cast<int>(t.dtype)) + " (" +
                        to_string(t.dtype) + "), which only linear weights (2-D .weight tensors) may have");
        // Scales are few (one per row) and every int8 path multiplies by them:
        // they are checked here, unlike the weights themselves.
        for (std::int64_t row = 0; t.scales && row < t.dims[0]; ++row)
            if (!std::isfinite(t.scales[row]) || t.scales[row] < 0.f)
                throw Error(path + ": tensor " + name + ": int8 scale of row " + std::to_string(row) + " is " +
                            std::to_string(t.scales[row]) + " (must be finite and >= 0)");
    }
}

}  // namespace onevit
