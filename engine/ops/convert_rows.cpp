#include "ops/convert_rows.hpp"

#include "ops/quantize.hpp"

namespace onevit {

void ConvertRows::run(int task, TaskContext& context) {
    if (src_.type != Activation::Type::bf16 || dst_.type != Activation::Type::s8) return RowOp::run(task, context);
    const Range rows = row_tiles_[task];
    quantize_bf16_rows(static_cast<const std::uint16_t*>(src_.at(rows.begin, cols_)), cols_, rows.size, cols_,
                       static_cast<std::int8_t*>(dst_.at(rows.begin, cols_)), dst_.row_scales + rows.begin);
}

void ConvertRows::run_row(int row, float* values) {
    load_row(src_, row, cols_, cols_, values);
    store_row(values, cols_, dst_, row, cols_);
}

}  // namespace onevit
