#include "ops/patch_embed.hpp"

#include "ops/patch_extract.hpp"

namespace onevit {

namespace {

// [dim, C, P, P] read as [dim, C·P·P].
TensorView flattened(const TensorView& weight) {
    return {{weight.dims[0], weight.dims[1] * weight.dims[2] * weight.dims[3]}, weight.data};
}

}  // namespace

PatchEmbedWeights::PatchEmbedWeights(Executor& loader, WeightMemory& memory, const PatchGrid& grid,
                                     const TensorView& weight, const TensorView& bias, int run_threads,
                                     Activation::Type type)
    : grid_(grid),
      linear_(loader, memory, flattened(weight), &bias, Epilogue::none, {grid.patches(), run_threads}, {type}) {}

PatchEmbedWeights::PatchEmbedWeights(const dnnl::engine& engine, const PatchGrid& grid, int dim, int run_threads,
                                     Activation::Type type)
    : grid_(grid),
      linear_(engine, LinearShape{grid.patch_dim(), dim, true, Epilogue::none, {type}}, {grid.patches(), run_threads}) {}

PatchEmbedSteps::PatchEmbedSteps(const PatchEmbedWeights& w, const dnnl::engine& engine, int batch, float* out)
    : grid_(w.grid_),
      batch_(batch),
      rows_(std::size_t(batch) * w.grid_.patches() * w.grid_.patch_dim()),  // floats: room for bf16 too
      patches_(rows_.data(), w.linear_.types().src),
      linear_(w.linear_, engine, batch * w.grid_.patches(), patches_, out) {}

void PatchEmbedSteps::plan(const PatchEmbedWeights& w, const dnnl::engine& engine, int batch) {
    LinearSteps::plan(w.linear_, engine, batch * w.grid_.patches());
}

void PatchEmbedSteps::run(Executor& executor, const float* input, std::vector<dnnl::memory>& scratchpads) {
    std::vector<Step>& steps = linear_.steps();
    const std::vector<Range>& row_tiles = linear_.row_tiles();
    if (!row_tiles.empty()) {  // each tile reads only its own patches: cut them out in the same task
        executor.parallel(static_cast<int>(steps.size()), [&](int t) {
            extract_patch_rows(grid_, input, row_tiles[t], patches_);
            steps[t].execute(executor.stream(), scratchpads[Executor::slot()]);
        });
        return;
    }
    executor.parallel(batch_ * grid_.patches(), [&](int row) {  // column tiles read every patch
        extract_patch_rows(grid_, input, {row, 1}, patches_);
    });
    executor.parallel(static_cast<int>(steps.size()), [&](int i) {
        steps[i].execute(executor.stream(), scratchpads[Executor::slot()]);
    });
}

}  // namespace onevit
