#include "model/forward_plan.hpp"

#include "model/graph.hpp"
#include "ops/attention.hpp"
#include "ops/linear.hpp"
#include "ops/norm.hpp"
#include "ops/patch_embed.hpp"

namespace onevit {

std::vector<Precision> planned_precisions() { return {Precision::f32, Precision::bf16, Precision::int8}; }

// Every layer of the description, planned as Forward builds it; one block
// stands for all (their shapes are alike).
void plan_forward(const Architecture& a, Precision precision, const dnnl::engine& engine, int threads, int batch) {
    const ModelGraph g = describe(a, precision);
    const BlockTypes fc1_whole_rows = BlockTypes::at(precision, a.attn_proj, true);
    const auto linear = [&](const LinearDesc& d) {
        const LinearWeights weights(engine, d.shape, {d.rows_per_image, threads});
        plan_linear(weights, engine, d.rows_per_image * batch);
    };
    const auto norm = [&](const std::optional<NormDesc>& d, int rows, Activation::Type dst) {
        if (d) plan_norm(engine, threads, rows, {d->kind, d->dim, d->eps}, dst);
    };
    const int rows = batch * a.tokens(), patch_rows = batch * a.patch_tokens();
    if (g.patch_embed) {
        const PatchEmbedDesc& p = *g.patch_embed;
        PatchEmbedding::plan(PatchEmbedWeights(engine, p.grid, p.dim, p.bias, threads, p.type), engine, batch);
    }
    norm(g.patch_norm_in, patch_rows, Activation::Type::f32);
    if (g.patch_linear) linear(*g.patch_linear);
    norm(g.patch_norm_out, patch_rows, Activation::Type::f32);
    norm(g.embed_norm, patch_rows, Activation::Type::f32);
    norm(g.norm_pre, rows, Activation::Type::f32);
    const BlockDesc& b = g.blocks.front();
    const bool post = b.kind == Block::post_norm;  // its norms add into x: loops
    if (!post) norm(b.norm1, rows, b.types.normed);
    linear(b.qkv);
    Attention::plan(engine, threads, b.attention.shape(batch), b.attention.types);
    norm(b.attn_norm, rows, b.types.proj_in);
    if (b.proj) linear(*b.proj);
    if (!post) norm(b.norm2, rows, b.types.normed);
    linear(b.fc1);
    if (precision == Precision::int8 && !b.mlp_hidden_op()) {  // fc1 writes s8 where its rows are whole
        LinearDesc whole = b.fc1;
        whole.shape.types.dst = fc1_whole_rows.hidden;
        linear(whole);
    }
    linear(b.fc2);
    norm(g.norm, rows, Activation::Type::f32);
    const int pooled_rows = g.head_dist ? 2 * batch : batch;
    if (g.attn_pool) {
        for (const LinearDesc* l : {&g.attn_pool->kv, &g.attn_pool->proj, &g.attn_pool->fc1, &g.attn_pool->fc2})
            linear(*l);
        norm(g.attn_pool->norm, batch, Activation::Type::f32);
    }
    norm(g.head_norm, pooled_rows, Activation::Type::f32);
    for (const auto* l : {&g.pool_proj, &g.head_hidden, &g.head, &g.head_dist})
        if (*l) linear(**l);
}

}  // namespace onevit
