// An op whose every output row is computed by a loop of ours, in row tiles
// one per thread (as the norms split rows, so that they chain with their
// neighbours): normalisations into bf16/s8, conversions between types.
#pragma once

#include <algorithm>
#include <string>

#include "ops/op.hpp"
#include "ops/schedule.hpp"

namespace onevit {

class RowOp : public Op {
public:
    RowOp(std::string name, int threads, int rows, int row_floats) : Op(std::move(name)) {
        row_tiles_ = chain_tiles(rows, threads);
        workspace_bytes_ = sizeof(float) * std::size_t(row_floats);
    }
    void run(int task, TaskContext& context) override {
        const Range rows = row_tiles_[task];
        for (int row = rows.begin; row < rows.begin + rows.size; ++row)
            run_row(row, reinterpret_cast<float*>(context.workspace));
    }

protected:
    // values: row_floats floats of the running thread's workspace.
    virtual void run_row(int row, float* values) = 0;
};

}  // namespace onevit
