#include "ops/linear.hpp"

#include "ops/linear_float.hpp"
#include "ops/linear_row_loop.hpp"

namespace onevit {

std::unique_ptr<Op> make_linear(std::string name, const LinearWeights& weights, const dnnl::engine& engine, int rows,
                                Activation src, Activation dst) {
    if (weights.row_epilogue())
        return std::make_unique<RowLoopLinear>(std::move(name), weights, engine, rows, src, dst);
    return std::make_unique<FloatLinear>(std::move(name), weights, engine, rows, src, dst);
}

void plan_linear(const LinearWeights& weights, const dnnl::engine& engine, int rows) {
    if (weights.row_epilogue()) {
        plan_linear_tiles(weights, engine, rows, RowLoopLinear::chunk_floats());
        return;
    }
    const auto& column_tiles = weights.column_tiles();
    for (const LinearTile& tile : plan_linear_tiles(weights, engine, rows))
        if (column_tiles.size() > 1)
            FloatLinear::copy_desc(weights, engine, tile.rows.size, column_tiles[tile.column_tile].columns);
}

}  // namespace onevit
