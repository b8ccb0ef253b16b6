#include "model/vit.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "ops/convert_rows.hpp"
#include "ops/tokens.hpp"

namespace onevit {

namespace {

std::size_t rows_times(int rows, int width) { return std::size_t(rows) * std::size_t(width); }

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
                d.kind == NormKind::layer ? file.tensor(d.name + ".bias").data : nullptr};
    }
    // Weights are reordered into memory of their own, so the file's copy is released.
    LinearWeights linear(const LinearDesc& d) const {
        LinearWeights weights(executor, memory, file, d.name + ".weight", optional_tensor(file, d.name + ".bias"),
                              d.shape.epilogue, {d.rows_per_image, run_threads}, d.shape.types);
        file.release(d.name + ".weight");
        return weights;
    }
    BlockWeights block(const BlockDesc& b) const {
        return {norm(b.norm1),
                linear(b.qkv),
                b.proj ? std::optional(linear(*b.proj)) : std::nullopt,
                norm(b.norm2),
                linear(b.fc1),
                linear(b.fc2)};
    }
};

std::optional<NormParams> optional_norm(const WeightLoader& load, const std::optional<NormDesc>& d) {
    return d ? std::optional(load.norm(*d)) : std::nullopt;
}

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
    patch_norm_in = optional_norm(load, graph.patch_norm_in);
    if (graph.patch_linear) {  // the convolution's kernel [D, C, P, P] read as [D, C·P·P]
        const LinearDesc& d = *graph.patch_linear;
        const TensorView& conv = file.tensor(d.name + ".weight");
        const TensorView flat{{d.shape.out, d.shape.in}, conv.data};
        patch_linear.emplace(loader, *memory, flat, &file.tensor(d.name + ".bias"), d.shape.epilogue,
                             LinearTuning{d.rows_per_image, run_threads}, d.shape.types);
        file.release(d.name + ".weight");
    }
    patch_norm_out = optional_norm(load, graph.patch_norm_out);
    prefix_tokens = a.prefix_tokens > 0 ? file.tensor("prefix_tokens").data : nullptr;
    pos_embed = file.tensor("pos_embed").data;
    norm_pre = optional_norm(load, graph.norm_pre);
    // Blocks are built in parallel: reordering their weights is most of loading,
    // and most layers are a single tile, whose reorder takes one thread.
    std::vector<std::optional<BlockWeights>> built(graph.blocks.size());
    loader.parallel(static_cast<int>(built.size()), [&](int i) { built[i].emplace(load.block(graph.blocks[i])); });
    for (auto& block : built) blocks.push_back(std::move(*block));
    norm = optional_norm(load, graph.norm);
    if (graph.attn_pool) {
        const AttentionPoolDesc& p = *graph.attn_pool;
        attn_pool.emplace(AttentionPoolWeights{file.tensor(p.query).data, load.linear(p.kv), load.linear(p.proj),
                                               load.norm(p.norm), load.linear(p.fc1), load.linear(p.fc2)});
    }
    head_norm = optional_norm(load, graph.head_norm);
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
      types_(BlockTypes::at(w.graph.precision, arch_.attn_proj,
                            !w.blocks.empty() && w.blocks.front().fc1.column_tiles().size() == 1)),
      patches_(rows_times(batch * arch_.patch_tokens(), arch_.dim)),
      x_(rows_times(rows_, arch_.dim)),
      h_(rows_times(rows_, arch_.dim)),
      qkv_(rows_times(rows_, 3 * arch_.inner_dim())),
      attn_(rows_times(rows_, arch_.inner_dim())),
      mlp_(rows_times(rows_, arch_.mlp_dim)),
      h_low_(types_.normed != dnnl::memory::data_type::f32 ? rows_times(rows_, arch_.dim) : 0),
      h_scales_(types_.normed == dnnl::memory::data_type::s8 ? rows_ : 0),
      attn_s8_(types_.quantizes_attention() ? rows_times(rows_, arch_.inner_dim()) : 0),
      attn_scales_(types_.quantizes_attention() ? rows_ : 0),
      mlp_scales_(types_.fc2_in == dnnl::memory::data_type::s8 ? rows_ : 0),
      mlp_s8_(types_.quantizes_hidden() ? rows_times(rows_, arch_.mlp_dim) : 0),
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
    if (attn_pool_) for (Op* op : attn_pool_->ops()) all.push_back(op);
    std::size_t scratchpad = 0, workspace = 0;
    for (const Op* op : all)
        scratchpad = std::max(scratchpad, op->scratchpad_bytes()), workspace = std::max(workspace, op->workspace_bytes());
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
        auto extract = std::make_unique<ExtractPatches>(
            grid, split_evenly(patch_rows, std::max(1, std::min(patch_rows, threads_))), patch_rows_.data());
        extract_ = extract.get();
        own(std::move(extract));
        patch_norm_in_ = own(make_norm(g.patch_norm_in->name, engine, threads_, patch_rows, *w_.patch_norm_in,
                                       patch_rows_.data(), patch_rows_.data()));
        patch_linear_ = own(make_linear(g.patch_linear->name, *w_.patch_linear, engine, patch_rows, patch_rows_.data(),
                                        patches_.data()));
        patch_norm_out_ = own(make_norm(g.patch_norm_out->name, engine, threads_, patch_rows, *w_.patch_norm_out,
                                        patches_.data(), patches_.data()));
    }
    tokens_op_ = own(std::make_unique<AssembleTokens>(arch_, threads_, batch_, w_.prefix_tokens, w_.pos_embed,
                                                      patches_.data(), x_.data()));
    if (w_.norm_pre)
        norm_pre_ = own(make_norm(g.norm_pre->name, engine, threads_, rows_, *w_.norm_pre, x_.data(), x_.data()));
}

// Per block: h = norm1(x); qkv = h Wqkvᵀ; attn = attention(qkv); x += attn Wprojᵀ;
// h = norm2(x); mlp = act(h W1ᵀ); x += mlp W2ᵀ — int8 quantizing attn and mlp rows
// where no op before them writes s8.
void Forward::build_blocks(const dnnl::engine& engine) {
    const BlockTypes& t = types_;
    const int I = arch_.inner_dim(), M = arch_.mlp_dim;
    const Activation normed(t.normed == dnnl::memory::data_type::f32 ? h_.data() : h_low_.data(), t.normed,
                            h_scales_.data());
    const Activation qkv(qkv_.data(), t.qkv), attention(attn_.data(), t.attention),
        hidden(mlp_.data(), t.hidden, mlp_scales_.data());
    const Activation proj_in = t.quantizes_attention() ? Activation(attn_s8_.data(), t.proj_in, attn_scales_.data())
                                                       : attention;
    const Activation fc2_in = t.quantizes_hidden() ? Activation(mlp_s8_.data(), t.fc2_in, mlp_scales_.data()) : hidden;
    const BlockDesc& first = w_.graph.blocks.front();
    auto attention_op = std::make_unique<Attention>(engine, threads_, first.attention.shape(batch_), qkv, attention);
    attention_ = attention_op.get();
    own(std::move(attention_op));
    for (std::size_t i = 0; i < w_.blocks.size(); ++i) {
        const BlockWeights& b = w_.blocks[i];
        const BlockDesc& d = w_.graph.blocks[i];
        BlockOps ops{};
        ops.norm1 = own(make_norm(d.norm1.name, engine, threads_, rows_, b.norm1, x_.data(), normed));
        ops.qkv = own(make_linear(d.qkv.name, b.qkv, engine, rows_, normed, qkv));
        if (!b.proj) ops.add_attention = own(std::make_unique<AddRows>(threads_, rows_, arch_.dim, attn_.data(), x_.data()));
        if (t.quantizes_attention())
            ops.quantize_attention = own(std::make_unique<ConvertRows>(d.proj->name + " input", threads_, rows_, I,
                                                                       attention, proj_in));
        if (b.proj) ops.proj = own(make_linear(d.proj->name, *b.proj, engine, rows_, proj_in, x_.data()));
        ops.norm2 = own(make_norm(d.norm2.name, engine, threads_, rows_, b.norm2, x_.data(), normed));
        ops.fc1 = own(make_linear(d.fc1.name, b.fc1, engine, rows_, normed, hidden));
        if (t.quantizes_hidden())
            ops.quantize_hidden =
                own(std::make_unique<ConvertRows>(d.fc2.name + " input", threads_, rows_, M, hidden, fc2_in));
        ops.fc2 = own(make_linear(d.fc2.name, b.fc2, engine, rows_, fc2_in, x_.data()));
        blocks_.push_back(ops);
    }
}

// norm → pool (or attention pool) → head_norm → head (mlp: head_hidden first; distilled: head_dist too).
void Forward::build_head(const dnnl::engine& engine) {
    const ModelGraph& g = w_.graph;
    const float* tokens = w_.norm ? h_.data() : x_.data();
    if (w_.norm) norm_ = own(make_norm(g.norm->name, engine, threads_, rows_, *w_.norm, x_.data(), h_.data()));
    if (w_.attn_pool)
        attn_pool_.emplace(*w_.attn_pool, engine, threads_,
                           AttentionPoolShape{batch_, tokens_, arch_.prefix_tokens, arch_.heads, arch_.dim, arch_.mlp_dim,
                                              arch_.attn_scale},
                           tokens, pooled_.data());
    else
        pool_ = own(std::make_unique<PoolTokens>(arch_, batch_, tokens, pooled_.data(), w_.head_dist.has_value()));
    const int pooled_rows = w_.head_dist ? 2 * batch_ : batch_;
    if (w_.head_norm)
        head_norm_ = own(make_norm(g.head_norm->name, engine, threads_, pooled_rows, *w_.head_norm, pooled_.data(),
                                   pooled_.data()));
    if (w_.pool_proj)
        pool_proj_ = own(make_linear(g.pool_proj->name, *w_.pool_proj, engine, batch_, pooled_.data(), embedded_.data()));
    float* embedding = w_.pool_proj ? embedded_.data() : pooled_.data();
    if (w_.head_hidden)
        head_hidden_ = own(make_linear(g.head_hidden->name, *w_.head_hidden, engine, batch_, embedding, hidden_.data()));
    if (w_.head)
        head_ = own(make_linear(g.head->name, *w_.head, engine, batch_, w_.head_hidden ? hidden_.data() : embedding,
                                logits_.data()));
    if (w_.head_dist)
        head_dist_ = own(make_linear(g.head_dist->name, *w_.head_dist, engine, batch_,
                                     pooled_.data() + rows_times(batch_, arch_.dim),
                                     logits_.data() + rows_times(batch_, arch_.num_classes)));
}

void Forward::run(Executor& executor, const float* input, float* output, Features* features,
                  AttentionMaps* attention, std::vector<EmulatedPhase>* emulated) {
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
    schedule.run({tokens_op_});  // x = [prefix tokens, patches] + pos_embed
    // Attention is the only op that reads other rows than it writes: everything
    // between two attentions runs as one chain of row tiles where it can.
    schedule.run({norm_pre_, blocks_.front().norm1, blocks_.front().qkv});
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
        const BlockOps& b = blocks_[i];
        const Attention::ProbabilitiesOut probs{attention ? attention->probs.data() + i * block_probs : nullptr,
                                                a.depth * block_probs};
        attention_->copy_probabilities_to(attention ? &probs : nullptr);
        schedule.run({attention_});  // attn = softmax(q kᵀ · scale) v
        schedule.run({b.add_attention});
        const bool last = i + 1 == blocks_.size();
        // x += attn Wprojᵀ + b; h = norm2(x); mlp = act(h W1ᵀ + b1); x += mlp W2ᵀ + b2;
        // then the next block's h = norm1(x) and qkv, or the final h = norm(x).
        schedule.run({b.quantize_attention, b.proj, b.norm2, b.fc1, b.quantize_hidden, b.fc2,
                      last ? norm_ : blocks_[i + 1].norm1, last ? nullptr : blocks_[i + 1].qkv});
    }
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
