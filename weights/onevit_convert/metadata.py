"""The metadata entries of FORMAT.md: type codes, and a ModelFile → [(key, type, value)]."""

U32, F32, STRING, F32_ARRAY, STRING_ARRAY = 0, 1, 2, 3, 4

# arch.* key → (type, Architecture field); FORMAT.md table order.
ARCH_KEYS = [
    ("arch.family", STRING, "family"),
    ("arch.image_height", U32, "image_height"),
    ("arch.image_width", U32, "image_width"),
    ("arch.channels", U32, "channels"),
    ("arch.patch_size", U32, "patch_size"),
    ("arch.dim", U32, "dim"),
    ("arch.depth", U32, "depth"),
    ("arch.heads", U32, "heads"),
    ("arch.head_dim", U32, "head_dim"),
    ("arch.mlp_dim", U32, "mlp_dim"),
    ("arch.num_classes", U32, "num_classes"),
    ("arch.prefix_tokens", U32, "prefix_tokens"),
    ("arch.norm_eps", F32, "norm_eps"),
    ("arch.gelu", STRING, "gelu"),
    ("arch.attn_scale", F32, "attn_scale"),
    ("arch.qkv_bias", U32, "qkv_bias"),
    ("arch.attn_proj", U32, "attn_proj"),
    ("arch.final_norm", U32, "final_norm"),
    ("arch.pool", STRING, "pool"),
    ("arch.head_norm", U32, "head_norm"),
    ("arch.head", STRING, "head"),
]
# Optional arch.* keys (FORMAT.md: "absence means the stated default"): (key, type, field,
# default). Written only when the value differs from the default, so that files of the
# families that predate them stay byte-identical; `arch.head_hidden` is required when
# `arch.head` is "mlp" and is written exactly then.
OPTIONAL_ARCH_KEYS = [
    ("arch.head_hidden", U32, "head_hidden", 0),
    ("arch.patch_norm", U32, "patch_norm", 0),
    ("arch.class_token", U32, "class_token", 1),
    ("arch.norm_pre", U32, "norm_pre", 0),
    ("arch.pool_proj", U32, "pool_proj", 0),
]
# Optional string keys that qualify an optional u32 key: allowed only with it, written whenever it is.
QUALIFYING_ARCH_KEYS = [
    ("arch.pool_proj_act", STRING, "pool_proj_act", "pool_proj"),
]
PREPROCESS_KEYS = [
    ("preprocess.resize", STRING, "resize"),
    ("preprocess.resize_size", U32, "resize_size"),
    ("preprocess.interpolation", STRING, "interpolation"),
    ("preprocess.mean", F32_ARRAY, "mean"),
    ("preprocess.std", F32_ARRAY, "std"),
]


def model_metadata(model):
    """Entries for a ModelFile (assemble.py); booleans become u32 0/1."""
    entries = []
    for keys, obj in ((ARCH_KEYS, model.arch), (PREPROCESS_KEYS, model.preprocess)):
        for key, kind, field in keys:
            value = getattr(obj, field)
            entries.append((key, kind, int(value) if kind == U32 else value))
        if obj is model.arch:
            for key, kind, field, default in OPTIONAL_ARCH_KEYS:
                value = int(getattr(obj, field))
                if value != default:
                    entries.append((key, kind, value))
            for key, kind, field, qualified in QUALIFYING_ARCH_KEYS:
                if getattr(obj, qualified):
                    entries.append((key, kind, getattr(obj, field)))
    arch = model.arch
    if arch.features:
        # Version 2 (FORMAT.md "Features"): the features, then the keys of those named.
        entries.append(("arch.features", STRING_ARRAY, list(arch.features)))
        if arch.has("rope"):
            entries += [("arch.rope_layout", STRING, arch.rope_layout),
                        ("arch.rope_per_block", U32, int(arch.rope_per_block))]
        if arch.has("attn_pool_shape"):
            entries += [("arch.pool_heads", U32, arch.pool_heads), ("arch.pool_mlp_dim", U32, arch.pool_mlp_dim),
                        ("arch.pool_prefix", U32, int(arch.pool_prefix))]
    if model.labels is not None:
        entries.append(("labels", STRING_ARRAY, list(model.labels)))
    if model.embedding:
        entries.append(("embedding", STRING, model.embedding))
    return entries
