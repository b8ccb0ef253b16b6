// A fully connected layer's weights, y = x Wᵀ + b, prepared once per model
// for a grid of single-threaded oneDNN matmuls over (row tiles × column tiles):
// the columns are split into tiles once, from the output width and the thread
// count, and each tile is reordered once into the blocked layout oneDNN's
// matmul prefers. The ops that run them (ops/linear.hpp) bind them to one
// batch's activations.
//
// Precision is the input's data type (LinearTypes): f32; bf16 (bf16 weights,
// f32 accumulation); or s8, i.e. int8: weights s8 with a scale per output
// channel — a file's int8 weights as stored, others quantized at load
// (ops/quantize.hpp) — and input rows s8 with a scale per row.
#pragma once

#include <optional>
#include <vector>

#include "format/model_file.hpp"
#include "onevit/model_info.hpp"
#include "ops/activation.hpp"
#include "ops/op.hpp"
#include "runtime/executor.hpp"
#include "runtime/weight_memory.hpp"

namespace onevit {

// gelu_quick: x·sigmoid(1.702x), which is oneDNN's swish with alpha 1.702.
// tanh: a pooler's or pre-logits layer's (f32 and bf16 layers only).
enum class Epilogue { none, gelu_erf, gelu_tanh, gelu_quick, residual_add, tanh };

// The epilogue of the layers a model's GELU follows (fc1, an mlp head's first layer).
Epilogue gelu_epilogue(Gelu gelu);
std::optional<Gelu> gelu_of(Epilogue epilogue);

// What a layer's column tiles and weight layout are chosen for: the row count
// it typically multiplies, and the threads of each executor that will run it.
struct LinearTuning {
    int rows = 1;
    int threads = 1;
};

// The data types of a layer's input (f32, bf16 or s8; the weights take the
// same) and of its output (f32 or bf16; at int8 also s8).
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
// multiply-accumulates at the layer's precision, tile overheads included: the
// cost its tiling minimises (the thread plan adds these up).
double modelled_linear_macs(const LinearShape& shape, LinearTuning tuning, int rows);

class LinearWeights {
public:
    // weight: [out, in] (PyTorch order) as the file stores it; bias: [out] or
    // nullptr. Reordered on loader's threads into memory.
    LinearWeights(Executor& loader, WeightMemory& memory, const ModelFile& file, const std::string& weight,
                  const TensorView* bias, Epilogue epilogue, LinearTuning tuning, LinearTypes types = {});
    // From f32 values (tests, and weights read another way, e.g. a convolution's).
    LinearWeights(Executor& loader, WeightMemory& memory, const TensorView& weight, const TensorView* bias,
                  Epilogue epilogue, LinearTuning tuning, LinearTypes types = {});
    // The plan only: column tiles and their layouts, no weights. Such weights
    // can be planned (plan_linear), not run.
    LinearWeights(const dnnl::engine& engine, const LinearShape& shape, LinearTuning tuning);

    int in_features() const { return shape_.in; }
    int out_features() const { return shape_.out; }
    const LinearShape& shape() const { return shape_; }
    LinearTypes types() const { return shape_.types; }
    bool int8() const { return shape_.types.src == dnnl::memory::data_type::s8; }
    // Whether the matmuls only multiply (int8: and apply the weight scales),
    // into f32 blocks that a row loop of ours finishes (ops/linear.hpp): int8
    // layers, and layers with a GELU at every precision (oneDNN 2.6's GELU
    // post-op costs twice our row loop, docs/performance.md).
    bool row_epilogue() const;
    int threads() const { return threads_; }

    struct ColumnTile {
        Range columns;
        dnnl::memory::desc weights_md;  // the reordered layout
        dnnl::memory weights;
        dnnl::memory bias;                 // f32/bf16 layers with a bias: the matmul adds it
        std::vector<float> weight_scales;  // int8: the tile's output channels' scales
    };
    const std::vector<ColumnTile>& column_tiles() const { return tiles_; }
    // [out]: the bias as the file has it; int8 layers without one get zeros (their row loop adds it).
    const float* bias() const { return bias_; }

    // The matmul of `rows` rows by this column tile, into a dense rows × width
    // block (f32 at int8, else the layer's dst type), with its fused epilogue.
    dnnl::matmul::primitive_desc matmul_desc(const dnnl::engine& engine, int rows, const ColumnTile& tile) const;

private:
    dnnl::primitive_attr attr(const ColumnTile& tile) const;
    // Reorders source (an [out, in] row-major matrix of source_type) into the tiles.
    void reorder_into_tiles(Executor& loader, WeightMemory& memory, const void* source,
                            dnnl::memory::data_type source_type);

    LinearShape shape_;
    int threads_ = 1;
    const float* bias_ = nullptr;
    std::vector<ColumnTile> tiles_;
};

// One tile of a layer's grid for some row count: a column tile of the weights
// times a row range, as matmuls over chunks of its rows (f32/bf16: one chunk).
struct LinearTile {
    struct Chunk {
        Range rows;
        dnnl::matmul::primitive_desc pd;
    };
    int column_tile = 0;
    Range rows;
    std::vector<Chunk> chunks;
};

// The tiles a layer runs for this many rows, every descriptor checked
// (ops/kernel_check.hpp): the cheapest row split for which oneDNN has no
// reference kernel. chunk_floats: at most this many floats of output per
// chunk (0: one chunk per tile).
std::vector<LinearTile> plan_linear_tiles(const LinearWeights& weights, const dnnl::engine& engine, int rows,
                                          std::size_t chunk_floats = 0);

}  // namespace onevit
