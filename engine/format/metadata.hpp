// The metadata entries of a model file (weights/FORMAT.md, "Metadata
// entries"): read from the header, then typed and range-checked into the
// architecture, the preprocessing recipe and the labels.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "format/byte_reader.hpp"
#include "format/enum_names.hpp"
#include "onevit/model_info.hpp"

namespace onevit {

class Metadata {
public:
    // The u32 count and the entries that follow it; keys checked for syntax and uniqueness.
    static Metadata read(ByteReader& in, std::string context);

    int u32(const std::string& key, std::uint32_t min, std::uint32_t max) const;
    bool flag(const std::string& key) const { return u32(key, 0, 1) == 1; }
    bool has(const std::string& key) const { return entries_.count(key) != 0; }
    // A key added after version 1's first files: absent means `absent`.
    int optional_u32(const std::string& key, std::uint32_t min, std::uint32_t max, int absent) const;
    float positive_f32(const std::string& key) const;
    const std::string& string(const std::string& key) const;
    const std::vector<float>& f32_array(const std::string& key) const;
    const std::vector<std::string>* optional_string_array(const std::string& key) const;
    template <class Enum, std::size_t N>
    Enum choice(const std::string& key, const EnumName<Enum> (&names)[N]) const {
        const std::string& s = string(key);
        for (const auto& n : names)
            if (s == n.name) return n.value;
        fail(key + " = \"" + s + "\" is not one of: " + choices_of(names));
    }
    [[noreturn]] void fail(const std::string& message) const;

    struct Value {
        std::uint32_t type = 0;
        std::uint32_t u32 = 0;
        float f32 = 0.f;
        std::string string;
        std::vector<float> f32_array;
        std::vector<std::string> string_array;
    };

private:
    Metadata(std::map<std::string, Value> entries, std::string context)
        : entries_(std::move(entries)), context_(std::move(context)) {}
    const Value& get(const std::string& key, std::uint32_t type) const;

    std::map<std::string, Value> entries_;
    std::string context_;
};

// version: the file's; version 2 files list their features (arch.features).
Architecture read_architecture(const Metadata& metadata, std::uint32_t version);
Preprocessing read_preprocessing(const Metadata& metadata, int channels);
// The labels (num_classes names, no control characters), or none.
std::vector<std::string> read_labels(const Metadata& metadata, int num_classes);
// What the embedding is in the source library's terms (no control characters), or empty.
std::string read_embedding_description(const Metadata& metadata);

}  // namespace onevit
