// onevit reports every failure — a bad file, a bad image, a bad argument — by
// throwing onevit::Error with a one-line message that names what is wrong.
#pragma once

#include <stdexcept>
#include <string>

namespace onevit {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace onevit
