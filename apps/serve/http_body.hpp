// The HTTP transport's request body (a Beast Body): the RequestBody's reader.
// With a pool, a Content-Length and a valid Inference-Header-Content-Length that
// leaves binary data of whole images, at most max_images, the JSON goes to text
// and each image's bytes into a slot of its own, taken as the bytes arrive (a
// client that trickles its body holds only the slots of what it sent); no free
// slot ends the read with kNoFreeSlot (a 503). Any other body goes to text.
#pragma once

#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "request_body.hpp"

namespace onevit::serve {

// The error a read of the body ends with when the pool has no free slot.
inline const boost::system::error_code kNoFreeSlot =
    boost::system::errc::make_error_code(boost::system::errc::not_enough_memory);

struct HttpBody {
    using value_type = RequestBody;

    class reader {
    public:
        // Beast makes the reader with the parser, before the header arrives: init() reads it.
        template <bool isRequest, class Fields>
        reader(boost::beast::http::header<isRequest, Fields>& header, value_type& body) : body_(body) {
            if constexpr (std::is_same_v<Fields, boost::beast::http::fields>) fields_ = &header;
        }

        void init(const boost::optional<std::uint64_t>& length, boost::system::error_code& ec) {
            ec = {};
            body_.text.clear();
            body_.binary = body_.pool ? ImageSlots(*body_.pool) : ImageSlots();
            body_.binary_bytes = 0;
            body_.split = false;
            if (body_.pool && fields_ && length) {
                const auto found = fields_->find("Inference-Header-Content-Length");
                if (found != fields_->end()) {
                    const auto value = found->value();
                    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), json_bytes_);
                    // Not a byte count: the whole body to text, and the codec says what is wrong.
                    const bool valid = error == std::errc() && end == value.data() + value.size();
                    // Only what can be a tensor of whole images: encoded images (BYTES) go to
                    // text, however many slots they would fill.
                    const std::uint64_t binary = *length - std::min<std::uint64_t>(*length, json_bytes_);
                    const std::size_t image_bytes = body_.pool->image_bytes();
                    body_.split = valid && binary > 0 && binary % image_bytes == 0 &&
                                  binary / image_bytes <= std::uint64_t(body_.max_images);
                }
            }
            if (length) body_.text.reserve(std::size_t(body_.split ? json_bytes_ : *length));
        }

        template <class ConstBufferSequence>
        std::size_t put(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
            ec = {};
            std::size_t used = 0;
            for (const auto buffer : boost::beast::buffers_range_ref(buffers)) {
                const char* data = static_cast<const char*>(buffer.data());
                std::size_t size = buffer.size();
                if (!body_.split) {
                    body_.text.append(data, size);
                    used += size;
                    continue;
                }
                const std::size_t to_text = std::min(size, json_bytes_ - std::min(json_bytes_, body_.text.size()));
                body_.text.append(data, to_text);
                used += to_text;
                data += to_text;
                size -= to_text;
                const std::size_t image_bytes = body_.pool->image_bytes();
                while (size > 0) {
                    const std::size_t at = body_.binary_bytes % image_bytes;
                    if (at == 0 && !body_.binary.add()) {
                        ec = kNoFreeSlot;
                        return used;
                    }
                    const std::size_t n = std::min(size, image_bytes - at);
                    std::memcpy(body_.binary.bytes(body_.binary.count() - 1) + at, data, n);
                    body_.binary_bytes += n;
                    used += n;
                    data += n;
                    size -= n;
                }
            }
            return used;
        }

        void finish(boost::system::error_code& ec) { ec = {}; }

    private:
        const boost::beast::http::fields* fields_ = nullptr;  // the header's
        value_type& body_;
        std::size_t json_bytes_ = 0;
    };
};

}  // namespace onevit::serve
