// dst = src converted row by row (bf16 → s8 with row scales, f32 → s8, …),
// as a row op (ops/row_op.hpp), so it chains with its neighbours. bf16 → s8
// (int8's attention output into proj) a tile at a time, without f32 rows.
#pragma once

#include "ops/activation.hpp"
#include "ops/row_op.hpp"

namespace onevit {

class ConvertRows : public RowOp {
public:
    ConvertRows(std::string name, int threads, int rows, int cols, Activation src, Activation dst)
        : RowOp(std::move(name), threads, rows, cols), cols_(cols), src_(src), dst_(dst) {}

    void run(int task, TaskContext& context) override;

private:
    void run_row(int row, float* values) override;
    int cols_;
    Activation src_, dst_;
};

}  // namespace onevit
