#include "model/forward_plan.hpp"

#include "model/block_types.hpp"
#include "ops/attention.hpp"
#include "ops/layer_norm.hpp"
#include "ops/linear.hpp"
#include "ops/patch_embed.hpp"

namespace onevit {

std::vector<Precision> planned_precisions() { return {Precision::f32, Precision::bf16, Precision::int8}; }

void plan_forward(const Architecture& a, Precision precision, const dnnl::engine& engine, int threads, int batch) {
    const int rows = batch * a.tokens(), patch_rows = batch * a.patch_tokens(), D = a.dim;
    const Epilogue gelu = gelu_epilogue(a.gelu);
    const BlockTypes t = BlockTypes::at(precision, a.attn_proj);
    const auto linear = [&](int in, int out, bool bias, Epilogue epilogue, int typical_rows, int run_rows,
                            LinearTypes types = {}) {
        LinearSteps::plan(LinearWeights(engine, LinearShape{in, out, bias, epilogue, types}, {typical_rows, threads}),
                          engine, run_rows);
    };
    const auto norm = [&](int norm_rows, int dim) { LayerNormSteps::plan(engine, threads, norm_rows, dim, a.norm_eps); };
    // A block's norms writing bf16/s8 are loops (ops/layer_norm.hpp): nothing to plan.
    const auto block_norm = [&] {
        if (t.normed == dnnl::memory::data_type::f32) norm(rows, D);
    };

    const PatchGrid grid{a.channels, a.image_height, a.image_width, a.patch_size};
    if (a.patch_norm) {
        norm(patch_rows, a.patch_dim());
        linear(a.patch_dim(), D, true, Epilogue::none, a.patch_tokens(), patch_rows);
        norm(patch_rows, D);
    } else {
        PatchEmbedSteps::plan(PatchEmbedWeights(engine, grid, D, threads, patch_embed_type(precision)), engine, batch);
    }
    if (a.norm_pre) norm(rows, D);
    block_norm();
    linear(D, 3 * a.inner_dim(), a.qkv_bias, Epilogue::none, a.tokens(), rows, {t.normed, t.qkv});
    AttentionSteps::plan(engine, threads, {batch, a.tokens(), a.heads, a.head_dim, a.attn_scale}, t.qkv, t.attention);
    if (a.attn_proj) linear(a.inner_dim(), D, true, Epilogue::residual_add, a.tokens(), rows, {t.proj_in});
    block_norm();
    linear(D, a.mlp_dim, true, gelu, a.tokens(), rows, {t.normed, t.hidden});
    linear(a.mlp_dim, D, true, Epilogue::residual_add, a.tokens(), rows, {t.fc2_in});
    if (a.final_norm) norm(rows, D);
    const int pooled_rows = a.head == Head::distilled ? 2 * batch : batch;
    if (a.head_norm) norm(pooled_rows, D);
    if (a.pool_proj > 0) linear(a.pooled_dim(), a.pool_proj, true, Epilogue::none, 1, batch);
    if (a.num_classes == 0) return;  // a model without a classifier: embeddings only
    if (a.head == Head::mlp) {
        linear(a.embed_dim(), a.head_hidden, true, gelu, 1, batch);
        linear(a.head_hidden, a.num_classes, true, Epilogue::none, 1, batch);
    } else if (a.head != Head::none) {
        linear(a.embed_dim(), a.num_classes, true, Epilogue::none, 1, batch);  // the distilled head's twin is alike
    }
}

}  // namespace onevit
