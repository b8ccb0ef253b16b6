// A served model of 1 x 2 x 2 pixels and 3 labelled classes, batch 4 at most:
// what the request codecs are checked against, in test_serve and in the fuzzer
// (fuzz_serve_request), without a model file.
#pragma once

#include "model_spec.hpp"

namespace onevit::serve {

inline ModelSpec tiny_spec() {
    ModelSpec spec;
    spec.name = "tiny";
    spec.channels = 1;
    spec.height = 2;
    spec.width = 2;
    spec.outputs = 3;
    spec.classifier = true;
    spec.labels = {"zero", "one", "two"};
    spec.max_batch = 4;
    return spec;
}

}  // namespace onevit::serve
