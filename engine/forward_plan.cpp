#include "forward_plan.hpp"

#include "ops/attention.hpp"
#include "ops/layer_norm.hpp"
#include "ops/linear.hpp"
#include "ops/patch_embed.hpp"

namespace onevit {

std::vector<Precision> planned_precisions() { return {Precision::f32}; }

void plan_forward(const Architecture& a, Precision precision, const dnnl::engine& engine, int threads, int batch) {
    if (precision != Precision::f32)
        throw Error(std::string("no plan for precision ") + to_string(precision) + " in this build");
    const int rows = batch * a.tokens(), patch_rows = batch * a.patch_tokens(), D = a.dim;
    const Epilogue gelu = gelu_epilogue(a.gelu);
    const auto linear = [&](int in, int out, bool bias, Epilogue epilogue, int typical_rows, int run_rows) {
        LinearSteps::plan(LinearWeights(engine, LinearShape{in, out, bias, epilogue}, {typical_rows, threads}), engine,
                          run_rows);
    };
    const auto norm = [&](int norm_rows, int dim) { LayerNormSteps::plan(engine, threads, norm_rows, dim, a.norm_eps); };

    const PatchGrid grid{a.channels, a.image_height, a.image_width, a.patch_size};
    if (a.patch_norm) {
        norm(patch_rows, a.patch_dim());
        linear(a.patch_dim(), D, true, Epilogue::none, a.patch_tokens(), patch_rows);
        norm(patch_rows, D);
    } else {
        PatchEmbedSteps::plan(PatchEmbedWeights(engine, grid, D, threads), engine, batch);
    }
    if (a.norm_pre) norm(rows, D);
    norm(rows, D);
    linear(D, 3 * a.inner_dim(), a.qkv_bias, Epilogue::none, a.tokens(), rows);
    AttentionSteps::plan(engine, threads, {batch, a.tokens(), a.heads, a.head_dim, a.attn_scale});
    if (a.attn_proj) linear(a.inner_dim(), D, true, Epilogue::residual_add, a.tokens(), rows);
    linear(D, a.mlp_dim, true, gelu, a.tokens(), rows);
    linear(a.mlp_dim, D, true, Epilogue::residual_add, a.tokens(), rows);
    if (a.final_norm) norm(rows, D);
    const int pooled_rows = a.head == Head::distilled ? 2 * batch : batch;
    if (a.head_norm) norm(pooled_rows, D);
    if (a.num_classes == 0) return;  // a model without a classifier: embeddings only
    if (a.head == Head::mlp) {
        linear(D, a.head_hidden, true, gelu, 1, batch);
        linear(a.head_hidden, a.num_classes, true, Epilogue::none, 1, batch);
    } else {
        linear(D, a.num_classes, true, Epilogue::none, 1, batch);  // the distilled head's twin is alike
    }
}

}  // namespace onevit
