"""The canonical tensor set of FORMAT.md: names, shapes, and the order they are written in."""


def canonical_tensors(arch):
    """[(name, shape)] in FORMAT.md table order, exactly the tensors `arch` calls for."""
    d, i, m, k = arch.dim, arch.inner_dim, arch.mlp_dim, arch.num_classes
    p = arch.patch_size
    out = [
        ("patch_embed.weight", (d, arch.channels, p, p)),
        ("patch_embed.bias", (d,)),
    ]
    if arch.patch_norm:
        out += [("patch_embed.norm_in.weight", (arch.patch_dim,)),
                ("patch_embed.norm_in.bias", (arch.patch_dim,)),
                ("patch_embed.norm_out.weight", (d,)), ("patch_embed.norm_out.bias", (d,))]
    if arch.prefix_tokens:
        out.append(("prefix_tokens", (arch.prefix_tokens, d)))
    out.append(("pos_embed", (arch.prefix_tokens + arch.grid_tokens, d)))
    if arch.norm_pre:
        out += [("norm_pre.weight", (d,)), ("norm_pre.bias", (d,))]
    for n in range(arch.depth):
        b = f"blocks.{n}."
        out += [(b + "norm1.weight", (d,)), (b + "norm1.bias", (d,)),
                (b + "attn.qkv.weight", (3 * i, d))]
        if arch.qkv_bias:
            out.append((b + "attn.qkv.bias", (3 * i,)))
        if arch.attn_proj:
            out += [(b + "attn.proj.weight", (d, i)), (b + "attn.proj.bias", (d,))]
        out += [(b + "norm2.weight", (d,)), (b + "norm2.bias", (d,)),
                (b + "mlp.fc1.weight", (m, d)), (b + "mlp.fc1.bias", (m,)),
                (b + "mlp.fc2.weight", (d, m)), (b + "mlp.fc2.bias", (d,))]
    if arch.final_norm:
        out += [("norm.weight", (d,)), ("norm.bias", (d,))]
    if arch.pool == "map":
        out += [("attn_pool.query", (d,)), ("attn_pool.kv.weight", (2 * d, d)), ("attn_pool.kv.bias", (2 * d,)),
                ("attn_pool.proj.weight", (d, d)), ("attn_pool.proj.bias", (d,)),
                ("attn_pool.norm.weight", (d,)), ("attn_pool.norm.bias", (d,)),
                ("attn_pool.fc1.weight", (m, d)), ("attn_pool.fc1.bias", (m,)),
                ("attn_pool.fc2.weight", (d, m)), ("attn_pool.fc2.bias", (d,))]
    if arch.head_norm:
        out += [("head_norm.weight", (d,)), ("head_norm.bias", (d,))]
    if arch.head == "mlp":
        out += [("head_hidden.weight", (arch.head_hidden, d)), ("head_hidden.bias", (arch.head_hidden,))]
        out += [("head.weight", (k, arch.head_hidden)), ("head.bias", (k,))]
    elif arch.head != "none":
        out += [("head.weight", (k, d)), ("head.bias", (k,))]
    if arch.head == "distilled":
        out += [("head_dist.weight", (k, d)), ("head_dist.bias", (k,))]
    return out
