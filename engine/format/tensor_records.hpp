// The tensor table of a model file (weights/FORMAT.md, "Tensor records"):
// each record's name, dtype, shape, offset and size checked against the file,
// then the whole set against what the architecture needs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "format/byte_reader.hpp"
#include "format/model_file.hpp"

namespace onevit {

// data: the tensor data, data_bytes long; records are ordered and disjoint
// inside it. A record past its end is thrown as cut_short(name, end of the
// record's data relative to data).
std::map<std::string, StoredTensor> read_tensor_records(
    ByteReader& in, const std::uint8_t* data, std::uint64_t data_bytes,
    const std::function<Error(const std::string& name, std::uint64_t end)>& cut_short);

// Throws naming the first difference: a missing or unexpected tensor, a
// shape, a reduced-precision type where only linear weights may have one, an
// int8 scale that is not finite or negative.
void check_tensor_set(const std::map<std::string, StoredTensor>& tensors, const ExpectedTensors& expected,
                      const std::string& path);

}  // namespace onevit
