#include "api_key.hpp"

#include <fstream>

#include "onevit/error.hpp"

namespace onevit::serve {

ApiKey ApiKey::from_file(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw Error(path + ": cannot read the API key file");
    std::string key;
    std::getline(file, key);
    while (!key.empty() && (key.back() == '\r' || key.back() == ' ' || key.back() == '\t')) key.pop_back();
    if (key.empty()) throw Error(path + ": the API key file's first line is empty");
    return ApiKey(std::move(key));
}

bool ApiKey::accepts(std::string_view authorization) const {
    constexpr std::string_view scheme = "Bearer ";
    // Every byte of the value is compared (against the key, cycled) whatever the
    // outcome; lengths are folded into the result, not checked first.
    const std::string expected = std::string(scheme) + key_;
    unsigned difference = authorization.size() == expected.size() ? 0u : 1u;
    for (std::size_t i = 0; i < authorization.size(); ++i)
        difference |=
            static_cast<unsigned char>(authorization[i]) ^ static_cast<unsigned char>(expected[i % expected.size()]);
    return difference == 0;
}

}  // namespace onevit::serve
