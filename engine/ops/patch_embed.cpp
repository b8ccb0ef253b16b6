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
                                     const TensorView& weight, const TensorView* bias, int run_threads,
                                     Activation::Type type)
    : grid_(grid),
      linear_(loader, memory, flattened(weight), bias, Epilogue::none, {grid.patches(), run_threads}, {type}) {}

PatchEmbedWeights::PatchEmbedWeights(const dnnl::engine& engine, const PatchGrid& grid, int dim, bool bias,
                                     int run_threads, Activation::Type type)
    : grid_(grid),
      linear_(engine, LinearShape{grid.patch_dim(), dim, bias, Epilogue::none, {type}}, {grid.patches(), run_threads}) {
}

ExtractPatches::ExtractPatches(const PatchGrid& grid, std::vector<Range> tiles, Activation rows)
    : Op("patch extraction"), grid_(grid), rows_(rows) {
    row_tiles_ = std::move(tiles);
    workspace_bytes_ = sizeof(float) * grid_.grid_width() * grid_.patch_dim();
}

void ExtractPatches::run(int task, TaskContext& context) {
    extract_patch_rows(grid_, images_, row_tiles_[task], rows_, reinterpret_cast<float*>(context.workspace));
}

PatchEmbedding::PatchEmbedding(const PatchEmbedWeights& w, const dnnl::engine& engine, int threads, int batch,
                               float* out)
    : rows(std::size_t(batch) * w.grid().patches() * w.grid().patch_dim()) {  // floats: room for bf16 too
    const int patch_rows = batch * w.grid().patches();
    const Activation patches(rows.data(), w.linear().types().src);
    linear = make_linear("patch embedding", w.linear(), engine, patch_rows, patches, out);
    // Each of the matmul's row tiles cuts out its own patches; column tiles read every patch.
    std::vector<Range> tiles = linear->row_tiles();
    if (tiles.empty()) tiles = split_evenly(patch_rows, std::max(1, std::min(patch_rows, threads)));
    extract = std::make_unique<ExtractPatches>(w.grid(), std::move(tiles), patches);
}

void PatchEmbedding::plan(const PatchEmbedWeights& w, const dnnl::engine& engine, int batch) {
    plan_linear(w.linear(), engine, batch * w.grid().patches());
}

}  // namespace onevit
