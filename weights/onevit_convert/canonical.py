"""The canonical tensor set of FORMAT.md: names, shapes, and the order they are written in."""


def canonical_tensors(arch):
    """[(name, shape)] in FORMAT.md table order, exactly the tensors `arch` calls for; a version 2
    feature's tensors (notes/format-v2.md) next to the layer they belong to."""
    d, i, m, k = arch.dim, arch.inner_dim, arch.mlp_dim, arch.num_classes
    p, hd, tokens = arch.patch_size, arch.head_dim, arch.prefix_tokens + arch.grid_tokens

    def norm(name, width):
        # rms_norm: every norm of the model has a weight only.
        return [(name + ".weight", (width,))] + ([] if arch.has("rms_norm") else [(name + ".bias", (width,))])

    out = [
        ("patch_embed.weight", (d, arch.channels, p, p)),
        ("patch_embed.bias", (d,)),
    ]
    if arch.patch_norm:
        out += norm("patch_embed.norm_in", arch.patch_dim) + norm("patch_embed.norm_out", d)
    if arch.has("embed_norm"):
        out += norm("embed_norm", d)
    if arch.prefix_tokens:
        out.append(("prefix_tokens", (arch.prefix_tokens, d)))
    if not arch.has("no_pos_embed"):
        out.append(("pos_embed", (tokens, d)))
    if arch.has("rope") and not arch.rope_per_block:
        out += [("rope.cos", (tokens, hd)), ("rope.sin", (tokens, hd))]
    if arch.norm_pre:
        out += norm("norm_pre", d)
    mlp_rows = 2 * m if arch.has("swiglu") else m
    for n in range(arch.depth):
        b = f"blocks.{n}."
        out += norm(b + "norm1", d) + [(b + "attn.qkv.weight", (3 * i, d))]
        if arch.qkv_bias:
            out.append((b + "attn.qkv.bias", (3 * i,)))
        if arch.has("qk_norm"):
            out += norm(b + "attn.q_norm", hd) + norm(b + "attn.k_norm", hd)
        if arch.has("rope") and arch.rope_per_block:
            out += [(b + "attn.rope.cos", (arch.heads, tokens, hd)), (b + "attn.rope.sin", (arch.heads, tokens, hd))]
        if arch.has("rel_pos_bias"):
            out.append((b + "attn.rel_pos_bias", (arch.heads, tokens, tokens)))
        if arch.has("attn_norm"):
            out += norm(b + "attn.norm", i)
        if arch.attn_proj:
            out += [(b + "attn.proj.weight", (d, i)), (b + "attn.proj.bias", (d,))]
        if not arch.has("parallel"):
            out += norm(b + "norm2", d)
        out += [(b + "mlp.fc1.weight", (mlp_rows, d)), (b + "mlp.fc1.bias", (mlp_rows,))]
        if arch.has("mlp_norm"):
            out += norm(b + "mlp.norm", m)
        out += [(b + "mlp.fc2.weight", (d, m)), (b + "mlp.fc2.bias", (d,))]
    if arch.final_norm:
        out += norm("norm", d)
    if arch.pool == "map":
        m = arch.pool_mlp_dim if arch.has("attn_pool_shape") else m
        out += [("attn_pool.query", (d,)), ("attn_pool.kv.weight", (2 * d, d)), ("attn_pool.kv.bias", (2 * d,)),
                ("attn_pool.proj.weight", (d, d)), ("attn_pool.proj.bias", (d,)),
                *norm("attn_pool.norm", d),
                ("attn_pool.fc1.weight", (m, d)), ("attn_pool.fc1.bias", (m,)),
                ("attn_pool.fc2.weight", (d, m)), ("attn_pool.fc2.bias", (d,))]
    if arch.head_norm:
        out += norm("head_norm", d)
    if arch.pool_proj:
        out += [("pool_proj.weight", (arch.pool_proj, arch.pooled_dim)), ("pool_proj.bias", (arch.pool_proj,))]
    e = arch.embed_dim
    if arch.head == "mlp":
        out += [("head_hidden.weight", (arch.head_hidden, e)), ("head_hidden.bias", (arch.head_hidden,))]
        out += [("head.weight", (k, arch.head_hidden)), ("head.bias", (k,))]
    elif arch.head != "none":
        out += [("head.weight", (k, e)), ("head.bias", (k,))]
    if arch.head == "distilled":
        out += [("head_dist.weight", (k, d)), ("head_dist.bias", (k,))]
    return out
