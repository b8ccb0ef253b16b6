// A fully connected layer, y = x Wᵀ + b with a fused epilogue, as a grid of
// single-threaded oneDNN matmuls over (row tiles × column tiles).
//
// LinearWeights is shared by every batch size: the columns are split into
// tiles once, from the output width and the thread count, and each tile is
// reordered once into the blocked layout oneDNN's matmul prefers.
// LinearSteps binds those weights to one batch's activation buffers.
//
// Precision is the input's data type (LinearTypes): f32; bf16 (bf16 weights,
// f32 accumulation); or s8, i.e. int8: weights s8 per output channel
// (quantize.hpp), the input's rows s8 with a scale per row, s32 accumulation.
// At int8 the matmul applies only the weight scales (static output scales)
// and writes f32 into a block; a row loop of ours then multiplies each row by
// its scale, adds the bias, applies the GELU and stores or adds the row into
// place. oneDNN 2.6's brgemm takes a per-row multiply only in a 3-D matmul
// ([1, rows, ·]), whose weights stay plain: measured 12–17 % slower per
// matmul than 2-D with blocked weights, and its GELU epilogue ~20 % more on
// fc1 than the row loop's.
#pragma once

#include <optional>
#include <vector>

#include "runtime/aligned_buffer.hpp"

#include "runtime/executor.hpp"
#include "format/model_file.hpp"
#include "onevit/model_info.hpp"
#include "ops/activation.hpp"
#include "ops/step.hpp"
#include "runtime/weight_memory.hpp"

namespace onevit {

// gelu_quick: x·sigmoid(1.702x), which is oneDNN's swish with alpha 1.702.
enum class Epilogue { none, gelu_erf, gelu_tanh, gelu_quick, residual_add };

// The epilogue of the layers a model's GELU follows (fc1, an mlp head's first layer).
Epilogue gelu_epilogue(Gelu gelu);

// What a layer's column tiles and weight layout are chosen for: the row count
// it typically multiplies, and the threads of each executor that will run it.
struct LinearTuning {
    int rows = 1;
    int threads = 1;
};

// The data types of a layer's input (f32, bf16 or s8; the weights take the
// same, s8 for int8) and of its output (f32 or bf16).
struct LinearTypes {
    dnnl::memory::data_type src = dnnl::memory::data_type::f32;
    dnnl::memory::data_type dst = dnnl::memory::data_type::f32;
};

// A layer's shape without its values: enough to plan its tiles.
struct LinearShape {
    int in = 0;
    int out = 0;
    bool bias = false;
    Epilogue epilogue = Epilogue::none;
    LinearTypes types = {};
};

// The modelled time of a layer's phase over this many rows, in one core's
// multiply-accumulates, tile overheads included: the cost its tiling minimises
// (model/thread_plan.cpp adds these up).
double modelled_linear_macs(const LinearShape& shape, LinearTuning tuning, int rows);

class LinearWeights {
public:
    // weight: [out, in] (PyTorch order); bias: [out] or nullptr. The weights are
    // reordered on loader's threads into memory.
    LinearWeights(Executor& loader, WeightMemory& memory, const TensorView& weight, const TensorView* bias,
                  Epilogue epilogue, LinearTuning tuning, LinearTypes types = {});
    // The plan only: column tiles and their layouts, no weights (at int8, no
    // scales either: placeholders, which set no layout). Such weights can be
    // given to LinearSteps::plan, not to LinearSteps.
    LinearWeights(const dnnl::engine& engine, const LinearShape& shape, LinearTuning tuning);

    int in_features() const { return in_; }
    int out_features() const { return out_; }
    LinearTypes types() const { return types_; }
    int column_tiles() const { return static_cast<int>(tiles_.size()); }

private:
    friend class LinearSteps;
    struct ColumnTile {
        Range columns;
        dnnl::memory::desc weights_md;  // the reordered layout
        dnnl::memory weights;
        dnnl::memory bias;  // empty without bias, and at int8 (its row loop reads bias_)
        std::vector<float> weight_scales;  // int8: the tile's output channels' scales
    };
    bool int8() const { return types_.src == dnnl::memory::data_type::s8; }
    // A rows × cols matrix whose rows are row_stride elements apart.
    dnnl::memory::desc matrix_md(int rows, int cols, std::int64_t row_stride, dnnl::memory::data_type type) const;
    dnnl::primitive_attr attr(const ColumnTile& tile) const;
    dnnl::matmul::primitive_desc primitive_desc(const dnnl::engine& engine, int rows, const ColumnTile& tile,
                                                const dnnl::memory::desc& weights_md) const;
    // Column tiles: the copy of a tile's dense block into its place in the output.
    dnnl::reorder::primitive_desc copy_desc(const dnnl::engine& engine, int rows, Range columns) const;

    int in_ = 0;
    int out_ = 0;
    bool has_bias_ = false;
    // [out], as in the file; at int8 (added by its row loop) zeros where the file has none
    const float* bias_ = nullptr;
    Epilogue epilogue_ = Epilogue::none;
    int threads_ = 1;
    LinearTypes types_;
    std::vector<ColumnTile> tiles_;
};

// Where a layer's tiles write their dense output blocks before these go into
// place (column tiles; every int8 layer): rows × row_pitch floats, each row
// tile's blocks within its own rows, so that the layers of a row chain can
// share one (row_pitch ≥ every such layer's out_features). None: LinearSteps
// allocates its own.
struct LinearBlocks {
    float* data = nullptr;
    int row_pitch = 0;
};

class LinearSteps : public StepList {
public:
    // A matmul over some rows of a tile, into a dense block.
    struct Chunk {
        Range rows;
        dnnl::matmul::primitive_desc pd;
    };
    // One tile of the grid: a column tile of the weights times a row range,
    // as one matmul or, at int8, as row chunks, each a matmul whose f32 block
    // the row loop after it reads while the block is still in the core's L2.
    struct Tile {
        int column_tile;
        Range rows;
        std::vector<Chunk> chunks;
        std::optional<dnnl::reorder::primitive_desc> copy;  // of the block into place, if column tiles
    };
    // The tiles LinearSteps runs for this many rows, every descriptor checked
    // (ops/kernel_check.hpp); needs no weights or activations.
    static std::vector<Tile> plan(const LinearWeights& weights, const dnnl::engine& engine, int rows);

    // src: rows × in_features; dst: rows × out_features, both dense (the
    // weights' layout was chosen for exactly these strides), of the weights'
    // LinearTypes. For residual_add, dst already holds the residual.
    // At int8, dst may be f32, bf16 or (for a single column tile, whose rows
    // are whole) s8.
    LinearSteps(const LinearWeights& weights, const dnnl::engine& engine, int rows, Activation src, Activation dst,
                LinearBlocks blocks = {});

private:
    AlignedBuffer own_blocks_;  // the blocks, where none were given
};

}  // namespace onevit
