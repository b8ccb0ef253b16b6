// One inference request as both transports hand it to the service, after the
// protocol codec (HTTP JSON + binary extension, or gRPC) has checked it against
// the model: exactly one input, of `batch` images, and what the output should be.
#pragma once

#include <string>
#include <vector>

#include "image_pool.hpp"

namespace onevit::serve {

struct OutputRequest {
    bool binary = false;     // HTTP: the output as binary tensor data after the JSON
    int classification = 0;  // > 0: the top-k "prob:index:label" strings instead of the tensor
};

struct InferenceRequest {
    std::string id;                   // echoed in the response
    int batch = 0;                    // images, 1 ... max_batch
    ImageSlots pixels;                // input pixel_values: batch images of C x H x W, preprocessed
    std::vector<std::string> images;  // input image: batch encoded JPEG/PNG files
    OutputRequest output;
    // The transport's thread may run the model for this request itself when nothing
    // else runs (Batcher::submit): HTTP's I/O threads, not gRPC's callbacks, which must not block.
    bool may_run_here = false;
};

}  // namespace onevit::serve
