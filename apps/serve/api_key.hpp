// --api-key-file: the key every endpoint but liveness requires, as
// "Authorization: Bearer KEY" (HTTP) or the "authorization" metadata (gRPC).
#pragma once

#include <string>
#include <string_view>

namespace onevit::serve {

class ApiKey {
public:
    // The file's first line, without the line break; throws onevit::Error if it
    // cannot be read or holds no key (an empty key would let everyone in).
    static ApiKey from_file(const std::string& path);
    explicit ApiKey(std::string key) : key_(std::move(key)) {}

    // Whether an Authorization value is "Bearer <the key>". Takes the same time
    // whatever the value's bytes, so timing cannot reveal how much of a guess was right.
    bool accepts(std::string_view authorization) const;

private:
    std::string key_;
};

}  // namespace onevit::serve
