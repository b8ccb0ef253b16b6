// The MLP's hidden rows between fc1 and fc2 where they are more than fc1's
// fused activation: the SwiGLU gate, silu(gate) ⊙ value, of fc1's 2·M
// outputs, and/or a norm over the M hidden values (EVA-02's sub-LN), then
// stored as fc2's input type (bf16, or s8 with its row scale). A row op, so
// it chains between fc1 and fc2.
#pragma once

#include <optional>

#include "ops/activation.hpp"
#include "ops/norm.hpp"
#include "ops/row_op.hpp"

namespace onevit {

class MlpHidden : public RowOp {
public:
    // fc1_out: rows × (gated ? 2·hidden : hidden) f32; dst: rows × hidden.
    MlpHidden(std::string name, int threads, int rows, int hidden, bool gated, std::optional<NormParams> norm,
              const float* fc1_out, Activation dst);

private:
    void run_row(int row, float* values) override;
    int hidden_;
    bool gated_;
    std::optional<NormParams> norm_;
    const float* fc1_out_;
    Activation dst_;
};

// values[i] = silu(gate[i]) · value[i] = gate[i] · sigmoid(gate[i]) · value[i].
void swiglu_row(const float* gate, const float* value, int n, float* values);

}  // namespace onevit
