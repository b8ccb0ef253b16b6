// An HTTP request's body as the transport reads it (http_body.hpp): with a pool
// set, when the binary data after the JSON (Inference-Header-Content-Length) can
// be a tensor of whole images, the JSON goes to `text` and the binary data
// straight into image slots, one image's bytes a slot, so that a binary tensor is
// read once and run where it landed; otherwise the whole body is `text`.
#pragma once

#include <cstddef>
#include <string>

#include "image_pool.hpp"

namespace onevit::serve {

struct RequestBody {
    std::string text;
    ImageSlots binary;
    std::size_t binary_bytes = 0;
    bool split = false;         // whether the binary data is in `binary`
    ImagePool* pool = nullptr;  // set before the body is read: where binary data goes
    int max_images = 0;         // and how many images a request may hold (--max-batch)
};

}  // namespace onevit::serve
