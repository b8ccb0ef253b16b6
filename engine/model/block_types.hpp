// The data type of each activation in a transformer block, per precision.
// The residual stream, LayerNorm statistics, softmax and every op outside the
// blocks (final norm, pooling, head) stay f32 throughout; the patch embedding
// multiplies bf16 patches by bf16 weights at int8 (patch_embed_type).
//
// bf16: every linear layer's input is bf16 (f32 accumulation), written as bf16
// by the op that produces it (the attention output by a conversion pass).
// Attention stays f32 (qkv is written as f32): with
// q and k rounded to bf16, random ViT-S logits moved by 0.19 (the bound is 0.19
// there), with f32 scores by 0.14, for ~4 % of the FLOPs.
// int8: the linear layers take s8 rows quantized per row at run time — by the
// LayerNorm itself, by fc1's row loop (ops/linear.hpp) where its rows are
// whole (one column tile), or else by a conversion pass over the GELU output
// and over the attention output; attention runs at bf16.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "onevit/model.hpp"

namespace onevit {

struct BlockTypes {
    using Type = dnnl::memory::data_type;
    Type normed = Type::f32;     // LayerNorm output: the qkv and fc1 input
    Type qkv = Type::f32;        // qkv output: attention's operands (bf16 at int8 only)
    Type attention = Type::f32;  // attention output
    Type proj_in = Type::f32;    // proj input: the attention output, quantized at int8
    Type hidden = Type::f32;     // fc1 output (after GELU)
    Type fc2_in = Type::f32;     // fc2 input: hidden, quantized at int8

    // has_proj: without a projection, attention adds straight into the f32 residual.
    // fc1_whole_rows: fc1 is one column tile, so at int8 it can quantize its rows.
    static BlockTypes at(Precision precision, bool has_proj, bool fc1_whole_rows = false) {
        BlockTypes t;
        if (precision == Precision::f32) return t;
        const Type low = precision == Precision::int8 ? Type::s8 : Type::bf16;
        t.normed = low;
        t.qkv = precision == Precision::bf16 ? Type::f32 : Type::bf16;
        t.attention = has_proj && t.qkv == Type::bf16 ? Type::bf16 : Type::f32;
        t.proj_in = has_proj ? low : t.attention;
        t.hidden = precision == Precision::int8 && fc1_whole_rows ? Type::s8 : Type::bf16;
        t.fc2_in = low;
        return t;
    }
    bool quantizes_attention() const { return proj_in != attention; }
    bool quantizes_hidden() const { return fc2_in != hidden; }
};

// The patch embedding's patches and weights (a convolution's, as a matmul;
// f32 sums and output): bf16 at int8 precision, 2 % off an int8 ViT-B/16 b1
// forward, 4 % off ViT-Ti/16 b8. At bf16 precision it stays f32: with bf16
// patches random ViT-S logits moved by 0.181 against parity's bound of 0.189
// (0.140 with f32 patches).
inline dnnl::memory::data_type patch_embed_type(Precision precision) {
    return precision == Precision::int8 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

}  // namespace onevit
