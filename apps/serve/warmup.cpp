#include "warmup.hpp"

#include <numeric>
#include <vector>

namespace onevit::serve {

void prepare_batch_sizes(const Model& model, int max_batch) {
    std::vector<int> sizes(max_batch);
    std::iota(sizes.begin(), sizes.end(), 1);
    model.plan(sizes);
}

}  // namespace onevit::serve
