#include "model/vit.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "ops/convert_rows.hpp"
#include "ops/mlp_hidden.hpp"
#include "ops/tokens.hpp"

namespace onevit {

namespace {

std::size_t rows_times(int rows, int width) { return std::size_t(rows) * std::size_t(width); }

// The description's block types; at int8, fc1 quantizes its own output rows
// where they are whole (one column tile) and nothing comes between fc1 and fc2,
// and qkv its heads' where the description has it and no column tile splits a head.
BlockTypes block_types(const VitWeights& w) {
    const BlockDesc& first = w.graph.blocks.front();
    const bool fc1_whole_rows = !first.mlp_hidden_op() && w.blocks.front().fc1.column_tiles().size() == 1;
    const int head_dim = w.graph.arch.head_dim;
    const auto& qkv_tiles = w.blocks.front().qkv.column_tiles();
    const bool qkv_by_head =
        first.types.qkv == dnnl::memory::data_type::s8 &&
        std::all_of(qkv_tiles.begin(), qkv_tiles.end(), [&](const LinearWeights::ColumnTile& tile) {
            return tile.columns.begin % head_dim == 0 && tile.columns.size % head_dim == 0;
        });
    return BlockTypes::at(w.graph.precision, w.graph.arch.attn_proj, fc1_whole_rows, qkv_by_head);
}

const TensorView* optional_tensor(const ModelFile& file, const std::string& name) {
    return file.has_tensor(name) ? &file.tensor(name) : nullptr;
}

// What building the weights needs: the file, the executor whose threads reorder
// them, where the reordered weights go, and the threads of each executor that
// will run them (a stream's; loading may use more).
struct WeightLoader {
    const ModelFile& file;
    Executor& executor;
    WeightMemory& memory;
    int run_threads;

    // A norm's parameters, read in place from the mapped file.
    NormParams norm(const NormDesc& d) const {
        return {d.kind, d.dim, d.eps, file.tensor(d.name + ".weight").data,
                d.kind == Norm::layer ? file.tensor(d.name + ".bias").data : nullptr};
    }
    // Weights are reordered into memory of their own, so the file's copy is released.
    LinearWeights linear(const LinearDesc& d) const {
        LinearWeights weights(executor, memory, file, d.name + ".weight", optional_tensor(file, d.name + ".bias"),
                              d.shape.epilogue, {d.rows_per_image, run_threads}, d.shape.types);
        file.release(d.name + ".weight");
        return weights;
    }
    std::optional<NormParams> norm(const std::optional<NormDesc>& d) const {
        return d ? std::optional(norm(*d)) : std::nullopt;
    }
    AttentionLayer attention(const AttentionDesc& d, const std::optional<std::string>& model_rope) const {
        AttentionLayer layer{norm(d.q_norm), norm(d.k_norm), d.rope, nullptr, nullptr, d.rope_per_head, nullptr};
        if (d.rope != Rope::none) {
            const std::string& table = d.rope_per_head ? d.rope_table : *model_rope;
            layer.rope_cos = file.tensor(table + ".cos").data;
            layer.rope_sin = file.tensor(table + ".sin").data;
        }
        if (!d.rel_pos_bias.empty()) layer.bias = file.tensor(d.rel_pos_bias).data;
        return layer;
    }
    BlockWeights block(const BlockDesc& b, const std::optional<std::string>& model_rope) const {
        return {norm(b.norm1),
                linear(b.qkv),
                attention(b.attention, model_rope),
                norm(b.attn_norm),
                b.proj ? std::optional(linear(*b.proj)) : std::nullopt,
                norm(b.norm2),
                linear(b.fc1),
                norm(b.mlp_norm),
                linear(b.fc2)};
    }
};

std::optional<LinearWeights> optional_linear(const WeightLoader& load, const std::optional<LinearDesc>& d) {
    return d ? std::optional(load.linear(*d)) : std::nullopt;
}

}  // namespace

VitWeights::VitWeights(const ModelFile& file, Executor& loader, int run_threads, Precision precision)
    : graph(describe(file.info().arch, precision)), memory(std::make_shared<WeightMemory>()) {
    const WeightLoader load{file, loader, *memory, run_threads};
    const Architecture& a = graph.arch;
    if (graph.patch_embed) {
        const PatchEmbedDesc& p = *graph.patch_embed;
        patch_embed.emplace(loader, *memory, p.grid, file.tensor(p.name + ".weight"),
                            optional_tensor(file, p.name + ".bias"), run_threads, p.type);
        file.release(p.name + ".weight");
    }
    patch_norm_in = load.norm(graph.patch_norm_in);
    if (graph.patch_linear) {  // the convolution's kernel [D, C, P, P] read as [D, C·P·P]
        const LinearDesc& d = *graph.patch_linear;
        const TensorView& conv = file.tensor(d.name + ".weight");
        const TensorView flat{{d.shape.out, d.shape.in}, conv.data};
        patch_linear.emplace(loader, *memory, flat, &file.tensor(d.name + ".bias"), d.shape.epilogue,
                             LinearTuning{d.rows_per_image, run_threads}, d.shape.types);
        file.release(d.name + ".weight");
    }
    patch_norm_out = load.norm(graph.patch_norm_out);
    embed_norm = load.norm(graph.embed_norm);
    prefix_tokens = a.prefix_tokens > 0 ? file.tensor("prefix_tokens").data : nullptr;
    pos_embed = graph.pos_embed ? file.tensor("pos_embed").data : nullptr;
    norm_pre = load.norm(graph.norm_pre);
    // Blocks are built in parallel: reordering their weights is most of loading,
    // and most layers are a single tile, whose reorder takes one thread.
    std::vector<std::optional<BlockWeights>> built(graph.blocks.size());
    loader.parallel(static_cast<int>(built.size()),
                    [&](int i) { built[i].emplace(load.block(graph.blocks[i], graph.rope_table)); });
    for (auto& block : built) blocks.push_back(std::move(*block));
    norm = load.norm(graph.norm);
    if (graph.attn_pool) {
        const AttentionPoolDesc& p = *graph.attn_pool;
        attn_pool.emplace(AttentionPoolWeights{file.tensor(p.query).data, load.linear(p.kv), load.linear(p.proj),
                                               load.norm(p.norm), load.linear(p.fc1), load.linear(p.fc2)});
    }
    head_norm = load.norm(graph.head_norm);
    pool_proj = optional_linear(load, graph.pool_proj);
    head_hidden = optional_linear(load, graph.head_hidden);
    head = optional_linear(load, graph.head);
    head_dist = optional_linear(load, graph.head_dist);
}

Forward::Forward(const VitWeights& w, Executor& executor, int batch, int threads)
    : w_(w),
      arch_(w.graph.arch),
      batch_(batch),
      threads_(threads > 0 ? threads : executor.threads()),
      tokens_(arch_.tokens()),
      rows_(batch * arch_.tokens()),
      types_(block_types(w)),
      patches_(rows_times(batch * arch_.patch_tokens(), arch_.dim)),
      x_(rows_times(rows_, arch_.dim)),
      h_(rows_times(rows_, arch_.dim)),
      qkv_(rows_times(rows_, 3 * arch_.inner_dim())),
      attn_(rows_times(rows_, arch_.inner_dim())),
      mlp_(rows_times(rows_, w.graph.blocks.front().fc1.shape.out)),
      branch_(arch_.block == Block::post_norm ? rows_times(rows_, arch_.dim) : 0),
      h_low_(types_.normed != dnnl::memory::data_type::f32 ? rows_times(rows_, arch_.dim) : 0),
      h_scales_(rows_),
      attn_in_(rows_times(rows_, arch_.inner_dim())),
      attn_scales_(rows_),
      mlp_in_(rows_times(rows_, arch_.mlp_dim)),
      mlp_scales_(rows_),
      qkv_scales_(types_.qkv == dnnl::memory::data_type::s8 ? rows_times(rows_, 3 * arch_.heads) : 0),
      pooled_(rows_times(2 * batch, arch_.pooled_dim())),
      embedded_(rows_times(batch, arch_.pool_proj)),
      hidden_(rows_times(batch, arch_.head_hidden)),
      logits_(rows_times(2 * batch, arch_.num_classes)) {
    const dnnl::engine& engine = executor.engine();
    build_stem(engine);
    build_blocks(engine);
    build_head(engine);
    std::vector<Op*> all;
    for (const auto& op : ops_) all.push_back(op.get());
    if (patch_embedding_) all.insert(all.end(), {patch_embedding_->extract.get(), patch_embedding_->linear.get()});
    if (attn_pool_)
        for (Op* op : attn_pool_->ops()) all.push_back(op);
    std::size_t scratchpad = 0, workspace = 0;
    for (const Op* op : all)
        scratchpad = std::max(scratchpad, op->scratchpad_bytes()),
        workspace = std::max(workspace, op->workspace_bytes());
    thread_memory_ = ThreadMemory(engine, threads_, scratchpad, workspace);
    for (Op* op : all) op->bind(thread_memory_);
}

Op* Forward::own(std::unique_ptr<Op> op) {
    ops_.push_back(std::move(op));
    return ops_.back().get();
}

// patches → (dual patch norm: norm_in, linear, norm_out) → x = [prefix, patches] + pos → norm_pre.
void Forward::build_stem(const dnnl::engine& engine) {
    const ModelGraph& g = w_.graph;
    const PatchGrid grid{arch_.channels, arch_.image_height, arch_.image_width, arch_.patch_size};
    const int patch_rows = batch_ * arch_.patch_tokens();
    if (w_.patch_embed) {
        patch_embedding_.emplace(*w_.patch_embed, engine, threads_, batch_, patches_.data());
        extract_ = patch_embedding_->extract.get();
        patch_linear_ = patch_embedding_->linear.get();
    } else {
        patch_rows_ = AlignedBuffer(rows_times(patch_rows, arch_.patch_dim()));
        auto extract = std::make_unique<ExtractPatches>(grid, chain_tiles(patch_rows, threads_), patch_rows_.data());
        extract_ = extract.get();
        own(std::move(extract));
        patch_norm_in_ = own(make_norm(g.patch_norm_in->name, engine, threads_, patch_rows, *w_.patch_norm_in,
                                       patch_rows_.data(), patch_rows_.data()));
        patch_linear_ = own(make_linear(g.patch_linear->name, *w_.patch_linear, engine, patch_rows, patch_rows_.data(),
                                        patches_.data()));
        patch_norm_out_ = own(make_norm(g.patch_norm_out->name, engine, threads_, patch_rows, *w_.patch_norm_out,
                                        patches_.data(), patches_.data()));
    }
    if (w_.embed_norm)
        embed_norm_ = own(make_norm(g.embed_norm->name, engine, threads_, patch_rows, *w_.embed_norm, patches_.data(),
                                    patches_.data()));
    tokens_op_ = own(std::make_unique<AssembleTokens>(arch_, threads_, batch_, w_.prefix_tokens, w_.pos_embed,
                                                      patches_.data(), x_.data()));
    if (w_.norm_pre)
        norm_pre_ = own(make_norm(g.norm_pre->name, engine, threads_, rows_, *w_.norm_pre, x_.data(), x_.data()));
}

Activation Forward::qkv() const {
    if (types_.qkv != dnnl::memory::data_type::s8) return Activation(qkv_.data(), types_.qkv);
    return Activation(qkv_.data(), types_.qkv, qkv_scales_.data(), arch_.head_dim);
}

// The activations a block's layers read and write (their types: BlockTypes).
struct BlockActivations {
    Activation x, normed, qkv, attention, proj_in, fc1_out, fc2_in, branch;
};

// One attention for every block: they share qkv_ and attn_; each block sets its layer.
void Forward::build_blocks(const dnnl::engine& engine) {
    const BlockDesc& first = w_.graph.blocks.front();
    auto attention = std::make_unique<Attention>(engine, threads_, first.attention.shape(batch_), qkv(),
                                                 Activation(attn_.data(), first.attention.out), first.attention.types);
    attention_ = attention.get();
    own(std::move(attention));
    for (std::size_t i = 0; i < w_.blocks.size(); ++i)
        blocks_.push_back(block_ops(engine, w_.graph.blocks[i], w_.blocks[i]));
}

// pre_norm:  h = norm1(x); qkv = h Wqkvᵀ | attention | x += proj(attn); h = norm2(x); x += fc2(act(fc1(h)))
// parallel:  h = norm1(x); qkv = h Wqkvᵀ; mlp = act(fc1(h)) | attention | x += proj(attn); x += fc2(mlp)
// post_norm: qkv = x Wqkvᵀ | attention | x += norm1(proj(attn)); x += norm2(fc2(act(fc1(x))))
// with, where the description has them, a norm on attn before proj, the MLP
// hidden gated and/or normalised, and, at bf16/int8, the conversions into
// the matmuls' input types that no op before them writes.
Forward::BlockOps Forward::block_ops(const dnnl::engine& engine, const BlockDesc& d, const BlockWeights& b) {
    using Type = dnnl::memory::data_type;
    const BlockTypes& t = types_;
    const int D = arch_.dim, I = arch_.inner_dim(), M = arch_.mlp_dim;
    const bool post = d.kind == Block::post_norm;
    const Activation normed(t.normed == Type::f32 ? (post ? x_.data() : h_.data()) : h_low_.data(), t.normed,
                            h_scales_.data());
    const Activation attention(attn_.data(), d.attention.out);
    const bool attn_in_differs = d.attn_norm || t.quantizes_attention();
    const Activation proj_in =
        attn_in_differs ? Activation(attn_in_.data(), t.proj_in, attn_scales_.data()) : attention;
    const Type fc1_type = d.mlp_hidden_op() ? Type::f32 : t.hidden;
    const Activation fc1_out(mlp_.data(), fc1_type, mlp_scales_.data());
    const bool fc2_in_differs = d.mlp_hidden_op() || t.quantizes_hidden();
    const Activation fc2_in = fc2_in_differs ? Activation(mlp_in_.data(), t.fc2_in, mlp_scales_.data()) : fc1_out;
    const Activation x(x_.data()), branch(branch_.data());
    const Activation branch_out = post ? branch : x;  // post-norm: the branch, which its norm adds to x

    BlockOps ops;
    // Post-norm blocks read x itself: converted where the matmuls take bf16/s8.
    const auto x_for_matmul = [&](const std::string& name) -> Op* {
        if (!post || t.normed == Type::f32) return nullptr;
        return own(std::make_unique<ConvertRows>(name, threads_, rows_, D, x, normed));
    };
    if (!post) ops.before.push_back(own(make_norm(d.norm1.name, engine, threads_, rows_, b.norm1, x_.data(), normed)));
    ops.before.push_back(x_for_matmul(d.qkv.name + " input"));
    ops.before.push_back(own(make_linear(d.qkv.name, b.qkv, engine, rows_, normed, qkv())));

    std::vector<Op*>& mlp = d.kind == Block::parallel ? ops.before : ops.after;
    if (!b.proj && !post)
        ops.after.push_back(own(std::make_unique<AddRows>(threads_, rows_, D, attn_.data(), x_.data())));
    if (d.attn_norm)
        ops.after.push_back(
            own(make_norm(d.attn_norm->name, engine, threads_, rows_, *b.attn_norm, attn_.data(), proj_in)));
    else if (t.quantizes_attention())
        ops.after.push_back(
            own(std::make_unique<ConvertRows>(d.proj->name + " input", threads_, rows_, I, attention, proj_in)));
    if (b.proj) ops.after.push_back(own(make_linear(d.proj->name, *b.proj, engine, rows_, proj_in, branch_out)));
    if (post)
        ops.after.push_back(own(make_norm(d.norm1.name, engine, threads_, rows_, b.norm1,
                                          b.proj ? branch_.data() : attn_.data(), x, true)));
    if (b.norm2 && !post)
        ops.after.push_back(own(make_norm(d.norm2->name, engine, threads_, rows_, *b.norm2, x_.data(), normed)));
    if (post) ops.after.push_back(x_for_matmul(d.fc1.name + " input"));
    mlp.push_back(own(make_linear(d.fc1.name, b.fc1, engine, rows_, normed, fc1_out)));
    if (d.mlp_hidden_op())
        mlp.push_back(own(std::make_unique<MlpHidden>(d.fc2.name + " input", threads_, rows_, M, d.swiglu, b.mlp_norm,
                                                      mlp_.data(), fc2_in)));
    else if (t.quantizes_hidden())
        mlp.push_back(own(std::make_unique<ConvertRows>(d.fc2.name + " input", threads_, rows_, M, fc1_out, fc2_in)));
    ops.after.push_back(own(make_linear(d.fc2.name, b.fc2, engine, rows_, fc2_in, branch_out)));
    if (post)
        ops.after.push_back(own(make_norm(d.norm2->name, engine, threads_, rows_, *b.norm2, branch_.data(), x, true)));
    return ops;
}

// norm → pool (or attention pool) → head_norm → head (mlp: head_hidden first; distilled: head_dist too).
void Forward::build_head(const dnnl::engine& engine) {
    const ModelGraph& g = w_.graph;
    const float* tokens = w_.norm ? h_.data() : x_.data();
    if (w_.norm) norm_ = own(make_norm(g.norm->name, engine, threads_, rows_, *w_.norm, x_.data(), h_.data()));
    if (w_.attn_pool)
        attn_pool_.emplace(
            *w_.attn_pool, engine, threads_,
            AttentionPoolShape{batch_, tokens_, g.attn_pool->prefix ? 0 : arch_.prefix_tokens, g.attn_pool->heads,
                               arch_.dim, g.attn_pool->fc1.shape.out, g.attn_pool->scale},
            tokens, pooled_.data());
    else
        pool_ = own(std::make_unique<PoolTokens>(arch_, batch_, tokens, pooled_.data(), w_.head_dist.has_value()));
    const int pooled_rows = w_.head_dist ? 2 * batch_ : batch_;
    if (w_.head_norm)
        head_norm_ = own(
            make_norm(g.head_norm->name, engine, threads_, pooled_rows, *w_.head_norm, pooled_.data(), pooled_.data()));
    if (w_.pool_proj)
        pool_proj_ =
            own(make_linear(g.pool_proj->name, *w_.pool_proj, engine, batch_, pooled_.data(), embedded_.data()));
    float* embedding = w_.pool_proj ? embedded_.data() : pooled_.data();
    if (w_.head_hidden)
        head_hidden_ =
            own(make_linear(g.head_hidden->name, *w_.head_hidden, engine, batch_, embedding, hidden_.data()));
    if (w_.head)
        head_ = own(make_linear(g.head->name, *w_.head, engine, batch_, w_.head_hidden ? hidden_.data() : embedding,
                                logits_.data()));
    if (w_.head_dist)
        head_dist_ = own(make_linear(g.head_dist->name, *w_.head_dist, engine, batch_,
                                     pooled_.data() + rows_times(batch_, arch_.dim),
                                     logits_.data() + rows_times(batch_, arch_.num_classes)));
}

void Forward::run(Executor& executor, const float* input, float* output, Features* features, AttentionMaps* attention,
                  EmulatedRun* emulated) {
    const Architecture& a = arch_;
    Schedule schedule(executor, thread_memory_);
    schedule.emulate_into(emulated);
    const std::int64_t block_probs = std::int64_t(a.heads) * tokens_ * tokens_;  // one block's, per image
    if (attention) {
        *attention = AttentionMaps{a.depth, a.heads, tokens_, {}};
        attention->probs.resize(std::size_t(batch_) * a.depth * block_probs);
    }
    extract_->set_input(input);
    schedule.run({extract_, patch_norm_in_, patch_linear_});  // patches = the image's patches · Wpatchᵀ + b
    schedule.run({patch_norm_out_});
    schedule.run({embed_norm_});
    schedule.run({tokens_op_});  // x = [prefix tokens, patches] + pos_embed
    // Attention is the only op that reads other rows than it writes: everything
    // between two attentions runs as one chain of row tiles where it can —
    // a block's ops after its attention, then the next block's before its own.
    std::vector<Op*> chain = {norm_pre_};
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
        chain.insert(chain.end(), blocks_[i].before.begin(), blocks_[i].before.end());
        schedule.run(chain);
        const Attention::ProbabilitiesOut probs{attention ? attention->probs.data() + i * block_probs : nullptr,
                                                a.depth * block_probs};
        attention_->copy_probabilities_to(attention ? &probs : nullptr);
        attention_->set_layer(&w_.blocks[i].attention);
        schedule.run({attention_});  // attn = softmax(q kᵀ · scale + bias) v
        chain = blocks_[i].after;
    }
    chain.push_back(norm_);  // h = norm(x)
    schedule.run(chain);
    if (attn_pool_)
        for (Op* op : attn_pool_->ops()) schedule.run({op});
    else
        schedule.run({pool_});
    if (features) copy_features(*features);
    schedule.run({head_norm_});
    schedule.run({pool_proj_});  // embedding = act(pooled Wᵀ + b): a pooler, CLIP's projection
    if (features) copy_embedding(*features);
    const std::size_t n = std::size_t(batch_) * a.outputs();
    if (!head_) {  // the model's output is its embedding
        std::memcpy(output, embedding(), sizeof(float) * n);
        return;
    }
    schedule.run({head_hidden_});  // hidden = gelu(pooled Whᵀ + bh)
    schedule.run({head_});
    schedule.run({head_dist_});
    if (head_dist_)  // the mean of both heads' logits
        for (std::size_t i = 0; i < n; ++i) logits_.data()[i] = 0.5f * (logits_.data()[i] + logits_.data()[n + i]);
    std::memcpy(output, logits_.data(), sizeof(float) * n);
}

void Forward::copy_features(Features& features) const {
    const std::size_t D = arch_.dim, T = tokens_, G = arch_.patch_tokens();
    const float* tokens = norm_ ? h_.data() : x_.data();
    features.class_token.resize(arch_.class_token ? batch_ * D : 0);
    features.patch_tokens.resize(batch_ * G * D);
    for (std::size_t b = 0; b < std::size_t(batch_); ++b) {
        const float* image = tokens + b * T * D;
        if (arch_.class_token) std::memcpy(features.class_token.data() + b * D, image, sizeof(float) * D);
        std::memcpy(features.patch_tokens.data() + b * G * D, image + arch_.prefix_tokens * D, sizeof(float) * G * D);
    }
}

// The classifier's input, as timm's forward_head(pre_logits=True): the pooled
// vector after the head norm and pool_proj; for a distilled model, the mean of
// the class and distillation tokens.
void Forward::copy_embedding(Features& features) const {
    const std::size_t n = std::size_t(batch_) * arch_.embed_dim();
    const float* pooled = embedding();
    features.embedding.assign(pooled, pooled + n);
    if (head_dist_)
        for (std::size_t i = 0; i < n; ++i) features.embedding[i] = 0.5f * (pooled[i] + pooled[n + i]);
}

}  // namespace onevit
