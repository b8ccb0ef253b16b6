#include "model/graph.hpp"

#include <cmath>

namespace onevit {

namespace {

using Type = Activation::Type;

struct Describer {
    const Architecture& a;
    Precision precision;

    NormDesc norm(std::string name, int dim) const { return {std::move(name), a.norm, dim, a.norm_eps}; }
    LinearDesc linear(std::string name, int in, int out, bool bias, Epilogue epilogue, int rows_per_image,
                      LinearTypes types = {}) const {
        return {std::move(name), LinearShape{in, out, bias, epilogue, types}, rows_per_image};
    }

    AttentionDesc attention(const std::string& b, const BlockTypes& t) const {
        AttentionDesc d;
        d.tokens = a.tokens(), d.heads = a.heads, d.head_dim = a.head_dim, d.scale = a.attn_scale;
        d.qkv = t.qkv, d.out = a.attn_norm ? Type::f32 : t.attention, d.types = t.attention_ops;
        if (a.qk_norm) d.q_norm = norm(b + "attn.q_norm", a.head_dim), d.k_norm = norm(b + "attn.k_norm", a.head_dim);
        d.rope = a.rope;
        if (a.rope != Rope::none) d.rope_table = a.rope_per_block ? b + "attn.rope" : "rope";
        d.rope_per_head = a.rope_per_block;
        if (a.rel_pos_bias) d.rel_pos_bias = b + "attn.rel_pos_bias";
        return d;
    }

    // pre_norm and parallel blocks add their branches to x as their last
    // layers run; post_norm ones write the branch, which its norm adds.
    BlockDesc block(int i) const {
        const std::string b = "blocks." + std::to_string(i) + ".";
        const int D = a.dim, I = a.inner_dim(), M = a.mlp_dim, T = a.tokens();
        const BlockTypes t = BlockTypes::at(precision, a.attn_proj, false, !a.qk_norm && a.rope == Rope::none);
        const bool swiglu = a.mlp == Mlp::swiglu;
        const bool hidden_op = swiglu || a.mlp_norm;
        const Epilogue add = a.block == Block::post_norm ? Epilogue::none : Epilogue::residual_add;
        BlockDesc d{
            a.block,
            norm(b + "norm1", D),
            linear(b + "attn.qkv", D, 3 * I, a.qkv_bias, Epilogue::none, T, {t.normed, t.qkv}),
            attention(b, t),
            a.attn_norm ? std::optional(norm(b + "attn.norm", I)) : std::nullopt,
            a.attn_proj ? std::optional(linear(b + "attn.proj", I, D, true, add, T, {t.proj_in})) : std::nullopt,
            a.block == Block::parallel ? std::nullopt : std::optional(norm(b + "norm2", D)),
            linear(b + "mlp.fc1", D, swiglu ? 2 * M : M, true, swiglu ? Epilogue::none : gelu_epilogue(a.gelu), T,
                   {t.normed, hidden_op ? Type::f32 : t.hidden}),
            swiglu,
            a.mlp_norm ? std::optional(norm(b + "mlp.norm", M)) : std::nullopt,
            linear(b + "mlp.fc2", M, D, true, add, T, {t.fc2_in}),
            t};
        return d;
    }

    AttentionPoolDesc attention_pool() const {
        const int D = a.dim, M = a.attn_pool_mlp_dim(), heads = a.attn_pool_heads();
        const float scale = a.pool_heads > 0 ? 1.f / std::sqrt(float(D / heads)) : a.attn_scale;
        return {"attn_pool.query",
                linear("attn_pool.kv", D, 2 * D, true, Epilogue::none, a.tokens()),
                linear("attn_pool.proj", D, D, true, Epilogue::none, 1),
                norm("attn_pool.norm", D),
                linear("attn_pool.fc1", D, M, true, gelu_epilogue(a.gelu), 1),
                linear("attn_pool.fc2", M, D, true, Epilogue::residual_add, 1),
                heads,
                scale,
                a.pool_prefix};
    }
};

void add_norm(std::vector<TensorDesc>& t, const std::optional<NormDesc>& n) {
    if (!n) return;
    t.push_back({n->name + ".weight", {n->dim}});
    if (n->kind == Norm::layer) t.push_back({n->name + ".bias", {n->dim}});
}

void add_linear(std::vector<TensorDesc>& t, const LinearDesc& l) {
    t.push_back({l.name + ".weight", {l.shape.out, l.shape.in}, true});
    if (l.shape.bias) t.push_back({l.name + ".bias", {l.shape.out}});
}

void add_rope(std::vector<TensorDesc>& t, const std::string& table, std::vector<std::int64_t> dims) {
    t.push_back({table + ".cos", dims});
    t.push_back({table + ".sin", dims});
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
    if (a.embed_norm) g.embed_norm = d.norm("embed_norm", D);
    g.pos_embed = a.pos_embed;
    if (a.rope != Rope::none && !a.rope_per_block) g.rope_table = "rope";
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
    const std::int64_t T = a.tokens();
    std::vector<TensorDesc> t;
    add_norm(t, patch_norm_in);
    // The patch embedding is stored as the convolution, with or without dual patch norm.
    t.push_back({"patch_embed.weight", {a.dim, a.channels, a.patch_size, a.patch_size}});
    t.push_back({"patch_embed.bias", {a.dim}});
    add_norm(t, patch_norm_out);
    add_norm(t, embed_norm);
    if (a.prefix_tokens > 0) t.push_back({"prefix_tokens", {a.prefix_tokens, a.dim}});
    if (pos_embed) t.push_back({"pos_embed", {T, a.dim}});
    if (rope_table) add_rope(t, *rope_table, {T, a.head_dim});
    add_norm(t, norm_pre);
    for (const BlockDesc& b : blocks) {
        add_norm(t, b.norm1);
        add_linear(t, b.qkv);
        add_norm(t, b.attention.q_norm);
        add_norm(t, b.attention.k_norm);
        if (b.attention.rope_per_head) add_rope(t, b.attention.rope_table, {a.heads, T, a.head_dim});
        if (!b.attention.rel_pos_bias.empty()) t.push_back({b.attention.rel_pos_bias, {a.heads, T, T}});
        add_norm(t, b.attn_norm);
        if (b.proj) add_linear(t, *b.proj);
        add_norm(t, b.norm2);
        add_linear(t, b.fc1);
        add_norm(t, b.mlp_norm);
        add_linear(t, b.fc2);
    }
    add_norm(t, norm);
    if (attn_pool) {
        t.push_back({attn_pool->query, {a.dim}});
        add_linear(t, attn_pool->kv);
        add_linear(t, attn_pool->proj);
        add_norm(t, attn_pool->norm);
        add_linear(t, attn_pool->fc1);
        add_linear(t, attn_pool->fc2);
    }
    add_norm(t, head_norm);
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
        for (const LinearDesc* l : {&attn_pool->kv, &attn_pool->proj, &attn_pool->fc1, &attn_pool->fc2})
            all.push_back(l);
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
    if (attn_pool) macs += 2.0 * arch.tokens() * arch.dim;  // the pooling query's q kᵀ and p v
    return 2 * macs;
}

}  // namespace onevit
