#include "ops/mlp_hidden.hpp"

#include <cstring>

#include "ops/quantize.hpp"
#include "ops/vector_math.hpp"

namespace onevit {

ONEVIT_VECTOR_CLONES
void swiglu_row(const float* gate, const float* value, int n, float* values) {
    for (int i = 0; i < n; ++i) values[i] = gate[i] / (1.f + exp_of(-gate[i])) * value[i];
}

MlpHidden::MlpHidden(std::string name, int threads, int rows, int hidden, bool gated, std::optional<NormParams> norm,
                     const float* fc1_out, Activation dst)
    : RowOp(std::move(name), threads, rows, hidden),
      hidden_(hidden),
      gated_(gated),
      norm_(norm),
      fc1_out_(fc1_out),
      dst_(dst) {}

void MlpHidden::run_row(int row, float* values) {
    const int width = gated_ ? 2 * hidden_ : hidden_;
    const float* in = fc1_out_ + std::int64_t(row) * width;
    if (gated_)
        swiglu_row(in, in + hidden_, hidden_, values);
    else
        std::memcpy(values, in, sizeof(float) * hidden_);
    if (norm_) normalize_row(*norm_, values, values);
    store_row(values, hidden_, dst_, row, hidden_);
}

}  // namespace onevit
