#include "model/vit.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace onevit {

namespace {

NormWeights norm_weights(const ModelFile& file, const std::string& name) {
    return {file.tensor(name + ".weight").data, file.tensor(name + ".bias").data};
}

const TensorView* optional_tensor(const ModelFile& file, const std::string& name) {
    return file.has_tensor(name) ? &file.tensor(name) : nullptr;
}

}  // namespace

// Weights are reordered into memory of their own, so the file's copy is released.
LinearWeights WeightLoader::linear(const std::string& name, Epilogue epilogue, int typical_rows,
                                   LinearTypes types) const {
    LinearWeights weights(executor, *memory, file.tensor(name + ".weight"), optional_tensor(file, name + ".bias"),
                          epilogue, {typical_rows, run_threads}, types);
    file.release(name + ".weight");
    return weights;
}

namespace {

PatchGrid patch_grid(const Architecture& a) { return {a.channels, a.image_height, a.image_width, a.patch_size}; }

NormedPatchEmbedWeights normed_patch_embed(const WeightLoader& load) {
    const Architecture& a = load.file.info().arch;
    const TensorView& conv = load.file.tensor("patch_embed.weight");
    const TensorView linear{{a.dim, a.patch_dim()}, conv.data};  // [D, C, P, P] read as [D, C·P·P]
    NormedPatchEmbedWeights weights{
        norm_weights(load.file, "patch_embed.norm_in"),
        LinearWeights(load.executor, *load.memory, linear, &load.file.tensor("patch_embed.bias"), Epilogue::none,
                      {a.patch_tokens(), load.run_threads}),
        norm_weights(load.file, "patch_embed.norm_out")};
    load.file.release("patch_embed.weight");
    return weights;
}

PatchEmbedWeights conv_patch_embed(const WeightLoader& load) {
    PatchEmbedWeights weights(load.executor, *load.memory, patch_grid(load.file.info().arch),
                              load.file.tensor("patch_embed.weight"), load.file.tensor("patch_embed.bias"),
                              load.run_threads, patch_embed_type(load.precision));
    load.file.release("patch_embed.weight");
    return weights;
}

AttentionPoolWeights attention_pool_weights(const WeightLoader& load) {
    const Architecture& a = load.file.info().arch;
    const int rows = a.tokens();
    return {load.file.tensor("attn_pool.query").data,
            load.linear("attn_pool.kv", Epilogue::none, rows),
            load.linear("attn_pool.proj", Epilogue::none, 1),
            load.file.tensor("attn_pool.norm.weight").data,
            load.file.tensor("attn_pool.norm.bias").data,
            load.linear("attn_pool.fc1", gelu_epilogue(a.gelu), 1),
            load.linear("attn_pool.fc2", Epilogue::residual_add, 1)};
}

// Blocks are built in parallel: reordering their weights is most of loading,
// and most layers are a single tile, whose reorder takes one thread.
std::vector<BlockWeights> block_weights(const WeightLoader& load) {
    const Architecture& a = load.file.info().arch;
    const int rows = a.tokens();
    const Epilogue gelu = gelu_epilogue(a.gelu);
    const BlockTypes t = BlockTypes::at(load.precision, a.attn_proj);
    std::vector<std::optional<BlockWeights>> built(a.depth);
    load.executor.parallel(a.depth, [&](int i) {
        const std::string b = "blocks." + std::to_string(i) + ".";
        built[i].emplace(BlockWeights{
            norm_weights(load.file, b + "norm1"),
            load.linear(b + "attn.qkv", Epilogue::none, rows, {t.normed, t.qkv}),
            a.attn_proj ? std::optional(load.linear(b + "attn.proj", Epilogue::residual_add, rows, {t.proj_in}))
                        : std::nullopt,
            norm_weights(load.file, b + "norm2"),
            load.linear(b + "mlp.fc1", gelu, rows, {t.normed, t.hidden}),
            load.linear(b + "mlp.fc2", Epilogue::residual_add, rows, {t.fc2_in}),
        });
    });
    std::vector<BlockWeights> blocks;
    for (auto& block : built) blocks.push_back(std::move(*block));
    return blocks;
}

std::size_t rows_times(int rows, int width) { return std::size_t(rows) * std::size_t(width); }

}  // namespace

VitWeights::VitWeights(const ModelFile& file, Executor& loader, int run_threads, Precision precision)
    : VitWeights(WeightLoader{file, loader, std::make_shared<WeightMemory>(), run_threads, precision}) {}

VitWeights::VitWeights(const WeightLoader& load)
    : arch(load.file.info().arch),
      precision(load.precision),
      types(BlockTypes::at(precision, arch.attn_proj)),
      memory(load.memory),
      patch_embed(arch.patch_norm ? std::nullopt : std::optional(conv_patch_embed(load))),
      normed_patch_embed(arch.patch_norm ? std::optional(onevit::normed_patch_embed(load)) : std::nullopt),
      prefix_tokens(arch.prefix_tokens > 0 ? load.file.tensor("prefix_tokens").data : nullptr),
      pos_embed(load.file.tensor("pos_embed").data),
      norm_pre(arch.norm_pre ? std::optional(norm_weights(load.file, "norm_pre")) : std::nullopt),
      blocks(block_weights(load)),
      norm(arch.final_norm ? std::optional(norm_weights(load.file, "norm")) : std::nullopt),
      attn_pool(arch.pool == Pool::map ? std::optional(attention_pool_weights(load)) : std::nullopt),
      head_norm(arch.head_norm ? std::optional(norm_weights(load.file, "head_norm")) : std::nullopt),
      pool_proj(arch.pool_proj > 0 ? std::optional(load.linear("pool_proj", Epilogue::none, 1)) : std::nullopt),
      head_hidden(arch.head == Head::mlp ? std::optional(load.linear("head_hidden", gelu_epilogue(arch.gelu), 1))
                                         : std::nullopt),
      head(arch.head != Head::none ? std::optional(load.linear("head", Epilogue::none, 1)) : std::nullopt),
      head_dist(arch.head == Head::distilled ? std::optional(load.linear("head_dist", Epilogue::none, 1))
                                             : std::nullopt) {}

Forward::Forward(const VitWeights& w, Executor& executor, int batch)
    : w_(w),
      batch_(batch),
      tokens_(w.arch.tokens()),
      types_(BlockTypes::at(w.precision, w.arch.attn_proj, !w.blocks.empty() && w.blocks.front().fc1.column_tiles() == 1)),
      patch_rows_(w.arch.patch_norm ? rows_times(batch * w.arch.patch_tokens(), w.arch.patch_dim()) : 0),
      patches_(rows_times(batch * w.arch.patch_tokens(), w.arch.dim)),
      x_(rows_times(batch * tokens_, w.arch.dim)),
      h_(rows_times(batch * tokens_, w.arch.dim)),
      qkv_(rows_times(batch * tokens_, 3 * w.arch.inner_dim())),
      attn_(rows_times(batch * tokens_, w.arch.inner_dim())),
      mlp_(rows_times(batch * tokens_, w.arch.mlp_dim)),
      h_low_(types_.normed != dnnl::memory::data_type::f32 ? rows_times(batch * tokens_, w.arch.dim) : 0),
      h_scales_(types_.normed == dnnl::memory::data_type::s8 ? batch * tokens_ : 0),
      attn_s8_(types_.quantizes_attention() ? rows_times(batch * tokens_, w.arch.inner_dim()) : 0),
      attn_scales_(types_.quantizes_attention() ? batch * tokens_ : 0),
      mlp_scales_(types_.fc2_in == dnnl::memory::data_type::s8 ? batch * tokens_ : 0),
      mlp_s8_(types_.quantizes_hidden() ? rows_times(batch * tokens_, w.arch.mlp_dim) : 0),
      pooled_(rows_times(2 * batch, w.arch.dim)),
      embedded_(rows_times(batch, w.arch.pool_proj)),
      hidden_(rows_times(batch, w.arch.head_hidden)),
      logits_(rows_times(2 * batch, w.arch.num_classes)),
      attention_(executor.engine(), executor.threads(),
                 AttentionShape{batch, tokens_, w.arch.heads, w.arch.head_dim, w.arch.attn_scale},
                 Activation(qkv_.data(), types_.qkv), Activation(attn_.data(), types_.attention)) {
    const Architecture& a = w.arch;
    const dnnl::engine& engine = executor.engine();
    const int threads = executor.threads();
    const int rows = batch * tokens_, D = a.dim;
    const BlockTypes& t = types_;
    const Activation normed(t.normed == dnnl::memory::data_type::f32 ? h_.data() : h_low_.data(), t.normed,
                            h_scales_.data());
    const Activation qkv(qkv_.data(), t.qkv), attention(attn_.data(), t.attention),
        hidden(mlp_.data(), t.hidden, mlp_scales_.data());
    const Activation proj_in = t.quantizes_attention() ? Activation(attn_s8_.data(), t.proj_in, attn_scales_.data())
                                                       : attention;
    const Activation fc2_in = t.quantizes_hidden() ? Activation(mlp_s8_.data(), t.fc2_in, mlp_scales_.data()) : hidden;
    if (t.quantizes_attention()) quantize_attention_.emplace(threads, rows, a.inner_dim(), attention, proj_in);
    if (t.quantizes_hidden()) quantize_hidden_.emplace(threads, rows, a.mlp_dim, hidden, fc2_in);
    if (w.patch_embed) patch_embed_.emplace(*w.patch_embed, engine, batch, patches_.data());
    if (w.normed_patch_embed) {
        const NormedPatchEmbedWeights& n = *w.normed_patch_embed;
        const int patch_rows = batch * a.patch_tokens();
        normed_patch_embed_.emplace(NormedPatchEmbedSteps{
            LayerNormSteps(engine, threads, patch_rows, a.patch_dim(), a.norm_eps, n.norm_in.scale, n.norm_in.shift,
                           patch_rows_.data(), patch_rows_.data()),
            LinearSteps(n.embed, engine, patch_rows, patch_rows_.data(), patches_.data()),
            LayerNormSteps(engine, threads, patch_rows, D, a.norm_eps, n.norm_out.scale, n.norm_out.shift,
                           patches_.data(), patches_.data())});
    }
    const bool any_blocks = t.normed == dnnl::memory::data_type::s8 ||
                            std::any_of(w.blocks.begin(), w.blocks.end(), [](const BlockWeights& b) {
                                return b.qkv.column_tiles() > 1 || (b.proj && b.proj->column_tiles() > 1) ||
                                       b.fc1.column_tiles() > 1 || b.fc2.column_tiles() > 1;
                            });
    if (any_blocks) {
        linear_blocks_pitch_ = std::max({3 * a.inner_dim(), a.mlp_dim, D});
        linear_blocks_ = AlignedBuffer(rows_times(rows, linear_blocks_pitch_));
    }
    const LinearBlocks shared{linear_blocks_.data(), linear_blocks_pitch_};
    for (const BlockWeights& b : w.blocks) {
        blocks_.push_back(BlockSteps{
            LayerNormSteps(engine, threads, rows, D, a.norm_eps, b.norm1.scale, b.norm1.shift, x_.data(), normed),
            LinearSteps(b.qkv, engine, rows, normed, qkv, shared),
            b.proj ? std::optional(LinearSteps(*b.proj, engine, rows, proj_in, x_.data(), shared)) : std::nullopt,
            LayerNormSteps(engine, threads, rows, D, a.norm_eps, b.norm2.scale, b.norm2.shift, x_.data(), normed),
            LinearSteps(b.fc1, engine, rows, normed, hidden, shared),
            LinearSteps(b.fc2, engine, rows, fc2_in, x_.data(), shared),
        });
    }
    if (w.norm_pre)
        norm_pre_.emplace(engine, threads, rows, D, a.norm_eps, w.norm_pre->scale, w.norm_pre->shift, x_.data(),
                          x_.data());
    if (w.norm) norm_.emplace(engine, threads, rows, D, a.norm_eps, w.norm->scale, w.norm->shift, x_.data(), h_.data());
    const int pooled_rows = w.head_dist ? 2 * batch : batch;
    if (w.head_norm)
        head_norm_.emplace(engine, threads, pooled_rows, D, a.norm_eps, w.head_norm->scale, w.head_norm->shift,
                           pooled_.data(), pooled_.data());
    if (w.attn_pool)
        attn_pool_.emplace(*w.attn_pool, engine, threads,
                           AttentionPoolShape{batch, tokens_, a.prefix_tokens, a.heads, D, a.mlp_dim, a.attn_scale,
                                              a.norm_eps},
                           w.norm ? h_.data() : x_.data(), pooled_.data());
    if (w.pool_proj) pool_proj_.emplace(*w.pool_proj, engine, batch, pooled_.data(), embedded_.data());
    float* embedding = w.pool_proj ? embedded_.data() : pooled_.data();
    if (w.head) head_.emplace(*w.head, engine, batch, w.head_hidden ? hidden_.data() : embedding, logits_.data());
    if (w.head_hidden) head_hidden_.emplace(*w.head_hidden, engine, batch, embedding, hidden_.data());
    if (w.head_dist)
        head_dist_.emplace(*w.head_dist, engine, batch, pooled_.data() + std::size_t(batch) * D,
                           logits_.data() + std::size_t(batch) * a.num_classes);

    std::size_t scratchpad = attention_.scratchpad_bytes();
    if (attn_pool_) scratchpad = std::max(scratchpad, attn_pool_->scratchpad_bytes());
    if (patch_embed_) scratchpad = std::max(scratchpad, patch_embed_->scratchpad_bytes());
    if (normed_patch_embed_)
        for (std::size_t bytes : {normed_patch_embed_->norm_in.scratchpad_bytes(),
                                  normed_patch_embed_->embed.scratchpad_bytes(),
                                  normed_patch_embed_->norm_out.scratchpad_bytes()})
            scratchpad = std::max(scratchpad, bytes);
    for (const BlockSteps& b : blocks_)
        for (std::size_t bytes : {b.norm1.scratchpad_bytes(), b.qkv.scratchpad_bytes(),
                                  b.proj ? b.proj->scratchpad_bytes() : 0, b.norm2.scratchpad_bytes(),
                                  b.fc1.scratchpad_bytes(), b.fc2.scratchpad_bytes()})
            scratchpad = std::max(scratchpad, bytes);
    for (const auto* n : {&norm_pre_, &norm_, &head_norm_})
        if (*n) scratchpad = std::max(scratchpad, (*n)->scratchpad_bytes());
    for (const auto* l : {&pool_proj_, &head_, &head_hidden_, &head_dist_})
        if (*l) scratchpad = std::max(scratchpad, (*l)->scratchpad_bytes());
    const dnnl::memory::desc scratchpad_md({std::int64_t(std::max<std::size_t>(scratchpad, 64))},
                                           dnnl::memory::data_type::u8, dnnl::memory::format_tag::x);
    for (int slot = 0; slot < threads; ++slot) scratchpads_.emplace_back(scratchpad_md, engine);
}

void Forward::run(Executor& executor, const float* input, float* logits, Features* features,
                  AttentionMaps* attention) {
    const Architecture& a = w_.arch;
    const std::int64_t block_probs = std::int64_t(a.heads) * tokens_ * tokens_;  // one block's, per image
    if (attention) {
        *attention = AttentionMaps{a.depth, a.heads, tokens_, {}};
        attention->probs.resize(std::size_t(batch_) * a.depth * block_probs);
    }
    embed_patches(executor, input);
    assemble_tokens(executor);
    // Attention is the only op that reads other rows than it writes: everything
    // between two attentions runs as one chain of row tiles.
    StepList* norm_pre = norm_pre_ ? &*norm_pre_ : nullptr;  // x = LN(x) in place
    run_row_chain(executor, {norm_pre, &blocks_.front().norm1, &blocks_.front().qkv});
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
        BlockSteps& b = blocks_[i];
        const AttentionSteps::ProbabilitiesOut probs{attention ? attention->probs.data() + i * block_probs : nullptr,
                                                     a.depth * block_probs};
        attention_.run(executor, scratchpads_, attention ? &probs : nullptr);  // attn = softmax(q kᵀ · scale) v
        if (!b.proj) add_attention_residual(executor);  // x += attn
        StepList* proj = b.proj ? &*b.proj : nullptr;   // x += attn Wprojᵀ + b
        // h = LN2(x); mlp = gelu(h W1ᵀ + b1); x += mlp W2ᵀ + b2; then the next
        // block's h = LN1(x), qkv = h Wqkvᵀ + b, or the final h = LN(x).
        // (int8: attn and mlp quantized per row before their matmuls.)
        StepList* next_norm = i + 1 < blocks_.size() ? &blocks_[i + 1].norm1 : norm_ ? &*norm_ : nullptr;
        StepList* next_qkv = i + 1 < blocks_.size() ? &blocks_[i + 1].qkv : nullptr;
        StepList* quantize_attention = quantize_attention_ ? &*quantize_attention_ : nullptr;
        StepList* quantize_hidden = quantize_hidden_ ? &*quantize_hidden_ : nullptr;
        run_row_chain(executor,
                      {quantize_attention, proj, &b.norm2, &b.fc1, quantize_hidden, &b.fc2, next_norm, next_qkv});
    }
    if (attn_pool_)
        attn_pool_->run(executor, scratchpads_);
    else
        pool(executor);
    if (features) copy_features(*features);
    if (head_norm_) run_steps(executor, head_norm_->steps());
    if (pool_proj_) project_pooled(executor);
    if (features) copy_embedding(*features);
    if (!head_) {  // the model's output is its embedding
        std::memcpy(logits, embedding(), sizeof(float) * batch_ * w_.arch.embed_dim());
        return;
    }
    if (head_hidden_) run_steps(executor, head_hidden_->steps());  // hidden = gelu(pooled Whᵀ + bh)
    run_steps(executor, head_->steps());
    if (head_dist_) {
        run_steps(executor, head_dist_->steps());
        average_distilled_heads(logits_.data());
    }
    std::memcpy(logits, logits_.data(), sizeof(float) * batch_ * w_.arch.num_classes);
}

// Where every op (null: none) is split into the same row tiles, each tile of an
// op reads only rows that the same tile of the ops before it wrote: the ops run
// as one parallel phase, each thread carrying its rows through all of them (one
// barrier, not one per op, and the rows stay in its cache). Otherwise op by op.
void Forward::run_row_chain(Executor& executor, std::initializer_list<StepList*> ops) {
    const std::vector<Range>* tiles = nullptr;
    bool aligned = true;
    for (StepList* op : ops) {
        if (!op) continue;
        if (!tiles) tiles = &op->row_tiles();
        aligned = aligned && !op->row_tiles().empty() && op->row_tiles() == *tiles;
    }
    if (!tiles) return;
    if (!aligned) {
        for (StepList* op : ops)
            if (op) run_steps(executor, op->steps());
        return;
    }
    executor.parallel(static_cast<int>(tiles->size()), [&](int t) {
        dnnl::memory& scratchpad = scratchpads_[Executor::slot()];
        for (StepList* op : ops)
            if (op) op->steps()[t].execute(executor.stream(), scratchpad);
    });
}

void Forward::run_steps(Executor& executor, std::vector<Step>& steps) {
    executor.parallel(static_cast<int>(steps.size()), [&](int i) {
        steps[i].execute(executor.stream(), scratchpads_[Executor::slot()]);
    });
}

void Forward::embed_patches(Executor& executor, const float* input) {
    if (patch_embed_) {
        patch_embed_->run(executor, input, scratchpads_);
        return;
    }
    extract_patches(executor, patch_grid(w_.arch), batch_, input, patch_rows_.data());
    run_steps(executor, normed_patch_embed_->norm_in.steps());
    run_steps(executor, normed_patch_embed_->embed.steps());
    run_steps(executor, normed_patch_embed_->norm_out.steps());
}

// x = concat(prefix tokens, patch embeddings) + pos_embed, per image.
void Forward::assemble_tokens(Executor& executor) {
    const Architecture& a = w_.arch;
    const int D = a.dim, P = a.prefix_tokens;
    executor.parallel(batch_ * tokens_, [&](int row) {
        const int b = row / tokens_, t = row % tokens_;
        float* dst = x_.data() + std::size_t(row) * D;
        if (t < P) {
            std::memcpy(dst, w_.prefix_tokens + std::size_t(t) * D, sizeof(float) * D);
        } else {
            const std::size_t patch_row = std::size_t(b) * a.patch_tokens() + (t - P);
            std::memcpy(dst, patches_.data() + patch_row * D, sizeof(float) * D);
        }
        const float* pos = w_.pos_embed + std::size_t(t) * D;
        for (int i = 0; i < D; ++i) dst[i] += pos[i];
    });
}

void Forward::add_attention_residual(Executor& executor) {
    const std::size_t D = w_.arch.dim;
    executor.parallel(batch_ * tokens_, [&](int row) {
        float* x = x_.data() + row * D;
        const float* attn = attn_.data() + row * D;
        for (std::size_t i = 0; i < D; ++i) x[i] += attn[i];
    });
}

// pooled[b] = token 0 (and, distilled, pooled[batch + b] = token 1), or the
// mean over all tokens, or over the patch tokens only, or token 0 followed by
// the mean over the patch tokens (rows of 2·dim).
void Forward::pool(Executor& executor) {
    const Architecture& a = w_.arch;
    const std::size_t D = a.dim, T = tokens_, width = a.pooled_dim();
    const float* tokens = norm_ ? h_.data() : x_.data();
    executor.parallel(batch_, [&](int b) {
        const float* image = tokens + b * T * D;
        float* dst = pooled_.data() + b * width;
        if (a.pool == Pool::token_and_mean_patches) {
            std::memcpy(dst, image, sizeof(float) * D);
            dst += D;
        }
        if (a.pool != Pool::token) {
            const std::size_t first = a.pool == Pool::mean ? 0 : a.prefix_tokens;
            std::fill(dst, dst + D, 0.f);
            for (std::size_t t = first; t < T; ++t)
                for (std::size_t i = 0; i < D; ++i) dst[i] += image[t * D + i];
            for (std::size_t i = 0; i < D; ++i) dst[i] /= float(T - first);
        } else {
            std::memcpy(dst, image, sizeof(float) * D);
        }
        if (head_dist_) std::memcpy(pooled_.data() + (batch_ + b) * D, image + D, sizeof(float) * D);
    });
}

void Forward::copy_features(Features& features) const {
    const Architecture& a = w_.arch;
    const std::size_t D = a.dim, T = tokens_, G = a.patch_tokens();
    const float* tokens = norm_ ? h_.data() : x_.data();
    features.class_token.resize(a.class_token ? batch_ * D : 0);
    features.patch_tokens.resize(batch_ * G * D);
    for (std::size_t b = 0; b < std::size_t(batch_); ++b) {
        const float* image = tokens + b * T * D;
        if (a.class_token) std::memcpy(features.class_token.data() + b * D, image, sizeof(float) * D);
        std::memcpy(features.patch_tokens.data() + b * G * D, image + a.prefix_tokens * D, sizeof(float) * G * D);
    }
}

// embedded = act(pooled Wᵀ + b): a pooler or pre-logits layer (tanh), or CLIP's projection.
void Forward::project_pooled(Executor& executor) {
    run_steps(executor, pool_proj_->steps());
    if (w_.arch.pool_proj_act == PoolProjAct::tanh) {
        float* v = embedded_.data();
        for (std::size_t i = 0, n = std::size_t(batch_) * w_.arch.pool_proj; i < n; ++i) v[i] = std::tanh(v[i]);
    }
}

// The classifier's input, as timm's forward_head(pre_logits=True): the pooled vector
// after the head norm and pool_proj; for a distilled model, the mean of the class
// and distillation tokens.
void Forward::copy_embedding(Features& features) const {
    const std::size_t n = std::size_t(batch_) * w_.arch.embed_dim();
    const float* pooled = embedding();
    features.embedding.assign(pooled, pooled + n);
    if (head_dist_)
        for (std::size_t i = 0; i < n; ++i) features.embedding[i] = 0.5f * (pooled[i] + pooled[n + i]);
}

void Forward::average_distilled_heads(float* logits) {
    const std::size_t n = std::size_t(batch_) * w_.arch.num_classes;
    for (std::size_t i = 0; i < n; ++i) logits[i] = 0.5f * (logits[i] + logits[n + i]);
}

}  // namespace onevit
