#include "ops/op.hpp"

#include <algorithm>

#include "runtime/executor.hpp"

namespace onevit {

dnnl::primitive_attr user_scratchpad_attr() {
    Executor::require_inside_run();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
}

std::vector<Range> split_evenly(int total, int parts) {
    std::vector<Range> ranges;
    int begin = 0;
    for (int p = 0; p < parts; ++p) {
        const int size = total / parts + (p < total % parts ? 1 : 0);
        ranges.push_back({begin, size});
        begin += size;
    }
    return ranges;
}

std::vector<Range> split_by(int total, int tile) {
    std::vector<Range> ranges;
    for (int begin = 0; begin < total; begin += tile) ranges.push_back({begin, std::min(tile, total - begin)});
    return ranges;
}

}  // namespace onevit
