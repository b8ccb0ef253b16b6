#include "model/graph.hpp"

namespace onevit {

namespace {

using Type = Activation::Type;

struct Describer {
    const Architecture& a;
    Precision precision;

    NormDesc norm(std::string name, int dim) const { return {std::move(name), NormKind::layer, dim, a.norm_eps}; }
    LinearDesc linear(std::string name, int in, int out, bool bias, Epilogue epilogue, int rows_per_image,
                      LinearTypes types = {}) const {
        return {std::move(name), LinearShape{in, out, bias, epilogue, types}, rows_per_image};
    }

    BlockDesc block(int i) const {
        const std::string b = "blocks." + std::to_string(i) + ".";
        const int D = a.dim, I = a.inner_dim(), T = a.tokens();
        const BlockTypes t = BlockTypes::at(precision, a.attn_proj);
        return BlockDesc{
            norm(b + "norm1", D),
            linear(b + "attn.qkv", D, 3 * I, a.qkv_bias, Epilogue::none, T, {t.normed, t.qkv}),
            AttentionDesc{T, a.heads, a.head_dim, a.attn_scale, t.qkv, t.attention},
            a.attn_proj ? std::optional(linear(b + "attn.proj", I, D, true, Epilogue::residual_add, T, {t.proj_in}))
                        : std::nullopt,
            norm(b + "norm2", D),
            linear(b + "mlp.fc1", D, a.mlp_dim, true, gelu_epilogue(a.gelu), T, {t.normed, t.hidden}),
            linear(b + "mlp.fc2", a.mlp_dim, D, true, Epilogue::residual_add, T, {t.fc2_in}),
            t,
        };
    }

    AttentionPoolDesc attention_pool() const {
        const int D = a.dim;
        return {"attn_pool.query",
                linear("attn_pool.kv", D, 2 * D, true, Epilogue::none, a.tokens()),
                linear("attn_pool.proj", D, D, true, Epilogue::none, 1),
                norm("attn_pool.norm", D),
                linear("attn_pool.fc1", D, a.mlp_dim, true, gelu_epilogue(a.gelu), 1),
                linear("attn_pool.fc2", a.mlp_dim, D, true, Epilogue::residual_add, 1),
                a.heads};
    }
};

void add_norm(std::vector<TensorDesc>& t, const NormDesc& n) {
    t.push_back({n.name + ".weight", {n.dim}});
    if (n.kind == NormKind::layer) t.push_back({n.name + ".bias", {n.dim}});
}

void add_linear(std::vector<TensorDesc>& t, const LinearDesc& l) {
    t.push_back({l.name + ".weight", {l.shape.out, l.shape.in}, true});
    if (l.shape.bias) t.push_back({l.name + ".bias", {l.shape.out}});
}

}  // namespace

ModelGraph describe(const Architecture& a, Precision precision) {
    const Describer d{a, precision};
    const int D = a.dim;
    ModelGraph g;
    g.arch = a;
    g.precision = precision;
    const PatchGrid grid{a.channels, a.image_height, a.image_width, a.patch_size};
    if (a.patch_norm) {
        g.patch_norm_in = d.norm("patch_embed.norm_in", a.patch_dim());
        g.patch_linear = d.linear("patch_embed", a.patch_dim(), D, true, Epilogue::none, a.patch_tokens());
        g.patch_norm_out = d.norm("patch_embed.norm_out", D);
    } else {
        g.patch_embed = PatchEmbedDesc{"patch_embed", grid, D, true, patch_embed_type(precision)};
    }
    if (a.norm_pre) g.norm_pre = d.norm("norm_pre", D);
    for (int i = 0; i < a.depth; ++i) g.blocks.push_back(d.block(i));
    if (a.final_norm) g.norm = d.norm("norm", D);
    if (a.pool == Pool::map) g.attn_pool = d.attention_pool();
    if (a.head_norm) g.head_norm = d.norm("head_norm", D);
    if (a.pool_proj > 0)
        g.pool_proj = d.linear("pool_proj", a.pooled_dim(), a.pool_proj, true,
                               a.pool_proj_act == PoolProjAct::tanh ? Epilogue::tanh : Epilogue::none, 1);
    const int E = a.embed_dim();  // the classifier's input
    if (a.head == Head::mlp) g.head_hidden = d.linear("head_hidden", E, a.head_hidden, true, gelu_epilogue(a.gelu), 1);
    if (a.head != Head::none)
        g.head = d.linear("head", a.head == Head::mlp ? a.head_hidden : E, a.num_classes, true, Epilogue::none, 1);
    if (a.head == Head::distilled) g.head_dist = d.linear("head_dist", D, a.num_classes, true, Epilogue::none, 1);
    return g;
}

std::vector<TensorDesc> ModelGraph::tensors() const {
    const Architecture& a = arch;
    std::vector<TensorDesc> t;
    if (patch_embed) {
        t.push_back({"patch_embed.weight", {a.dim, a.channels, a.patch_size, a.patch_size}});
        if (patch_embed->bias) t.push_back({"patch_embed.bias", {a.dim}});
    } else {
        add_norm(t, *patch_norm_in);
        // The convolution's kernel, applied as a linear map: stored as the convolution.
        t.push_back({"patch_embed.weight", {a.dim, a.channels, a.patch_size, a.patch_size}});
        t.push_back({"patch_embed.bias", {a.dim}});
        add_norm(t, *patch_norm_out);
    }
    if (a.prefix_tokens > 0) t.push_back({"prefix_tokens", {a.prefix_tokens, a.dim}});
    t.push_back({"pos_embed", {a.tokens(), a.dim}});
    if (norm_pre) add_norm(t, *norm_pre);
    for (const BlockDesc& b : blocks) {
        add_norm(t, b.norm1);
        add_linear(t, b.qkv);
        if (b.proj) add_linear(t, *b.proj);
        add_norm(t, b.norm2);
        add_linear(t, b.fc1);
        add_linear(t, b.fc2);
    }
    if (norm) add_norm(t, *norm);
    if (attn_pool) {
        t.push_back({attn_pool->query, {a.dim}});
        add_linear(t, attn_pool->kv);
        add_linear(t, attn_pool->proj);
        add_norm(t, attn_pool->norm);
        add_linear(t, attn_pool->fc1);
        add_linear(t, attn_pool->fc2);
    }
    if (head_norm) add_norm(t, *head_norm);
    for (const auto* l : {&pool_proj, &head_hidden, &head, &head_dist})
        if (*l) add_linear(t, **l);
    return t;
}

std::vector<const LinearDesc*> ModelGraph::linears() const {
    std::vector<const LinearDesc*> all;
    if (patch_linear) all.push_back(&*patch_linear);
    for (const BlockDesc& b : blocks) {
        all.push_back(&b.qkv);
        if (b.proj) all.push_back(&*b.proj);
        all.push_back(&b.fc1);
        all.push_back(&b.fc2);
    }
    if (attn_pool)
        for (const LinearDesc* l : {&attn_pool->kv, &attn_pool->proj, &attn_pool->fc1, &attn_pool->fc2}) all.push_back(l);
    for (const auto* l : {&pool_proj, &head_hidden, &head, &head_dist})
        if (*l) all.push_back(&**l);
    return all;
}

double ModelGraph::flops() const {
    double macs = 0;
    if (patch_embed) macs += double(patch_embed->grid.patches()) * patch_embed->dim * patch_embed->grid.patch_dim();
    for (const LinearDesc* l : linears()) macs += double(l->rows_per_image) * l->shape.in * l->shape.out;
    for (const BlockDesc& b : blocks)  // q kᵀ and p v, all heads
        macs += 2.0 * b.attention.tokens * b.attention.tokens * b.attention.heads * b.attention.head_dim;
    if (attn_pool) macs += 2.0 * arch.patch_tokens() * arch.dim;  // the pooling query's q kᵀ and p v
    return 2 * macs;
}

}  // namespace onevit
