// The data type of each activation in a transformer block, per precision
// (docs/design.md, "Precision"). The residual stream, norm statistics,
// softmax and every op outside the blocks stay f32 at every precision.
//   bf16: every block matmul's input is bf16, written as bf16 by the op that
//         produces it; attention's q kᵀ and p v bf16, f32 sums (ops/attention.hpp).
//   int8: every block matmul's input is s8 with a scale per row, quantized
//         by the op that produces it (a norm, fc1's row loop where its rows
//         are whole) or by a conversion pass; attention's q kᵀ is s8 · s8 and
//         its p v u8 · s8 (ops/attention.hpp), from qkv's s8 rows with a scale
//         per head's q, k and v (bf16 rows where q and k are normed or rotated).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "onevit/model.hpp"
#include "ops/attention.hpp"

namespace onevit {

struct BlockTypes {
    using Type = dnnl::memory::data_type;
    Type normed = Type::f32;       // norm output: the qkv and fc1 input
    Type qkv = Type::f32;          // qkv output: attention's input
    AttentionTypes attention_ops;  // what q kᵀ and p v compute in
    Type attention = Type::f32;    // attention output
    Type proj_in = Type::f32;      // proj input: the attention output, quantized at int8
    Type hidden = Type::f32;       // fc1 output (after the activation)
    Type fc2_in = Type::f32;       // fc2 input: hidden, quantized at int8

    // has_proj: without a projection, attention adds straight into the f32 residual.
    // fc1_whole_rows: fc1 is one column tile, so at int8 it can quantize its rows.
    // qkv_by_head: at int8, qkv writes s8 with a scale per head's q, k and v
    // (Activation::scale_group), which attention reads as they are: where
    // nothing transforms q and k in between (q/k norm, RoPE) and qkv's column
    // tiles keep each head whole.
    static BlockTypes at(Precision precision, bool has_proj, bool fc1_whole_rows = false, bool qkv_by_head = false) {
        BlockTypes t;
        if (precision == Precision::f32) return t;
        const Type low = precision == Precision::int8 ? Type::s8 : Type::bf16;
        t.normed = low;
        t.qkv = precision == Precision::int8 && qkv_by_head ? Type::s8 : Type::bf16;
        t.attention_ops =
            precision == Precision::int8 ? AttentionTypes{Type::s8, Type::u8} : AttentionTypes{Type::bf16, Type::bf16};
        t.attention = has_proj ? Type::bf16 : Type::f32;
        t.proj_in = has_proj ? low : t.attention;
        t.hidden = precision == Precision::int8 && fc1_whole_rows ? Type::s8 : Type::bf16;
        t.fc2_in = low;
        return t;
    }
    bool quantizes_attention() const { return proj_in != attention; }
    bool quantizes_hidden() const { return fc2_in != hidden; }
};

// The patch embedding's patches and weights (f32 sums and output): bf16 at
// int8 precision, f32 otherwise (docs/design.md, "Precision").
inline dnnl::memory::data_type patch_embed_type(Precision precision) {
    return precision == Precision::int8 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

}  // namespace onevit
