#include "ops/linear_float.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "ops/kernel_check.hpp"

namespace onevit {

using dnnl::memory;

dnnl::reorder::primitive_desc FloatLinear::copy_desc(const LinearWeights& w, const dnnl::engine& engine, int rows,
                                                     Range columns) {
    dnnl::primitive_attr attr = user_scratchpad_attr();
    if (w.shape().epilogue == Epilogue::residual_add) {
        dnnl::post_ops add;
        add.append_sum(1.f);
        attr.set_post_ops(add);
    }
    const memory::data_type type = w.types().dst;
    const memory::desc block({rows, columns.size}, type, {columns.size, 1});
    const memory::desc place({rows, columns.size}, type, {w.out_features(), 1});
    return checked(dnnl::reorder::primitive_desc(engine, block, engine, place, attr), "column tile copy");
}

FloatLinear::FloatLinear(std::string name, const LinearWeights& w, const dnnl::engine& engine, int rows, Activation src,
                         Activation dst)
    : BlockOp(std::move(name), engine) {
    if (w.row_epilogue() || src.type != w.types().src || dst.type != w.types().dst)
        throw std::logic_error("FloatLinear: activations of other data types than the weights were prepared for");
    const auto& column_tiles = w.column_tiles();
    const bool blocked = column_tiles.size() > 1;
    std::map<std::pair<int, int>, dnnl::reorder::primitive_desc> copies;
    for (const LinearTile& t : plan_linear_tiles(w, engine, rows)) {
        const auto& tile = column_tiles[t.column_tile];
        const auto& pd = t.chunks.front().pd;
        Task task;
        std::unordered_map<int, memory> args{
            {DNNL_ARG_SRC, memory(pd.src_desc(), engine, src.at(t.rows.begin, w.in_features()))},
            {DNNL_ARG_WEIGHTS, tile.weights}};
        if (tile.bias) args[DNNL_ARG_BIAS] = tile.bias;
        void* place = dst.at(t.rows.begin, w.out_features(), tile.columns.begin);
        scratchpad_bytes_ = std::max(scratchpad_bytes_, pd.scratchpad_desc().get_size());
        if (!blocked) {
            args[DNNL_ARG_DST] = memory(pd.dst_desc(), engine, place);
            task.matmul = BoundPrimitive(dnnl::matmul(pd), std::move(args));
            row_tiles_.push_back(t.rows);
        } else {
            const auto shape = std::make_pair(t.rows.size, tile.columns.size);
            task.block_class = block_class(t.rows.size, tile.columns.size, pd.dst_desc());
            args[DNNL_ARG_DST] = memory();  // the running thread's block
            task.matmul = BoundPrimitive(dnnl::matmul(pd), std::move(args));
            auto copy = copies.find(shape);
            if (copy == copies.end())
                copy = copies.emplace(shape, copy_desc(w, engine, t.rows.size, tile.columns)).first;
            task.copy = BoundPrimitive(
                dnnl::reorder(copy->second),
                {{DNNL_ARG_FROM, memory()}, {DNNL_ARG_TO, memory(copy->second.dst_desc(), engine, place)}});
            scratchpad_bytes_ = std::max(scratchpad_bytes_, copy->second.scratchpad_desc().get_size());
        }
        tasks_.push_back(std::move(task));
    }
    if (blocked) row_tiles_.clear();
}

void FloatLinear::run(int t, TaskContext& context) {
    Task& task = tasks_[t];
    if (!task.copy) return task.matmul.execute(context);
    const dnnl::memory& block = workspace_block(context.slot, task.block_class);
    task.matmul.args[DNNL_ARG_DST] = block;
    task.matmul.execute(context);
    task.copy->args[DNNL_ARG_FROM] = block;
    task.copy->execute(context);
}

}  // namespace onevit
