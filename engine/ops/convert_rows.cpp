#include "ops/convert_rows.hpp"

#include "ops/quantize.hpp"

namespace onevit {

void ConvertRows::run_row(int row, float* values) {
    load_row(src_, row, cols_, cols_, values);
    store_row(values, cols_, dst_, row, cols_);
}

}  // namespace onevit
