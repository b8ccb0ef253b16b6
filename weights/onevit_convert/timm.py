"""timm `VisionTransformer` / DeiT state dicts → canonical tensors.

timm's names are already nearly canonical; the work here is the optional parts, each
folded into the canonical layout where that is exact:
  * class token, register tokens (`reg_token`) and the DeiT distillation token become the
    prefix tokens, in timm's order (class, registers | class, distillation);
  * LayerScale (`ls1`/`ls2`, DeiT-III, DINOv2) is folded into attn.proj / mlp.fc2;
  * a patch embedding (CLIP), attention projection or MLP without bias gets a zero bias;
  * `norm_pre` (CLIP), `fc_norm` (→ head_norm) and the attention-pooling head `attn_pool`
    (SigLIP's MAP: its latent query goes through `attn_pool.q` here, once);
  * no `head`: a model without a classifier (num_classes 0), which gives embeddings.
Every other variant of timm's ViT is refused by the name of its feature.
"""

import re

import numpy as np

from . import timm_blocks
from .errors import ConvertError
from .mapped import MappedCheckpoint
from .tensors import as_f32, block_count, expect_keys, expect_ndim, reject_features, \
    shape_str, squeeze_leading

FAMILY = "timm"
DESCRIPTION = ("timm (patch_embed.proj.weight, pos_embed, blocks.N.{norm1,attn.qkv,attn.proj,norm2,"
               "mlp.fc1,mlp.fc2}.*; optional cls_token, reg_token, dist_token + head_dist.*, "
               "blocks.N.ls1/ls2.gamma, norm_pre.*, norm.* or fc_norm.*, attn_pool.*, head.*)")

_BLOCK = r"blocks\.(\d+)\."
# (pattern, the feature it shows): each a layer .ovit cannot express.
_UNSUPPORTED = [
    (r"^blocks\.\d+\.(attns|ffns)\.", "parallel blocks (ParallelThingsBlock, vit_*_18x2_*)"),
    (r"^blocks\.\d+\.(in_proj|in_norm|out_proj)\.",
     "parallel scaling blocks (ParallelScalingBlock: vit_*_xp_*, vit_pwee_*)"),
    (r"^blocks\.\d+\.attn\.(lambda_|sub_norm)", "differential attention (attn_layer='diff')"),
    (r"(^|\.)(rope|freqs)|relative_position|rel_pos", "relative or rotary position embeddings (rel-pos/RoPE)"),
    (r"^patch_embed\.backbone\.", "a hybrid CNN stem (patch_embed.backbone, vit_*_resnet*)"),
    (r"^patch_embed\.norm\.", "a norm inside the patch embedding (patch_embed.norm, embed_norm_layer)"),
    (r"^blocks\.\d+\.attn\.[qk]_norm\.", "query/key normalisation (attn.q_norm/k_norm, qk_norm=True)"),
    (r"^blocks\.\d+\.attn\.norm\.", "a norm inside attention (attn.norm, scale_attn_norm)"),
    (r"^blocks\.\d+\.mlp\.norm\.", "a norm inside the MLP (mlp.norm, scale_mlp_norm)"),
    (r"^blocks\.\d+\.mlp\.fc1_[gx]\.", "a SwiGLU MLP (mlp.fc1_g / mlp.fc1_x)"),
    (r"^attn_pool\.(pos_embed|q_norm|k_norm)", "attention pooling with a position embedding or q/k norm"),
    (r"^attn_pool\.(?!(latent|q|kv|proj|norm|mlp\.fc1|mlp\.fc2)(\.|$))",
     "an attention pool other than timm's AttentionPoolLatent (global_pool='prr'?)"),
    (r"^pre_logits\.", "a pre-logits layer (pre_logits.fc) before the head"),
    (r"^blocks\.\d+\.(gamma_[12]$|attn\.[qkv]_bias$|attn\.[qkv]_proj\.)",
     "eva.py's Eva block layout (gamma_1/gamma_2, attn.q_bias/v_bias or q/k/v_proj): name the model as timm's "
     "eva.py registers it (--arch or a hub config.json)"),
]
# Per block: timm suffix → canonical suffix (identical apart from the prefix).
_BLOCK_WEIGHTS = ["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.proj.weight",
                  "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc2.weight"]
_BLOCK_BIASES = ["attn.proj.bias", "mlp.fc1.bias", "mlp.fc2.bias"]   # absent: proj_bias=False
_POOL = ["attn_pool.latent", "attn_pool.q.weight", "attn_pool.kv.weight", "attn_pool.proj.weight",
         "attn_pool.proj.bias", "attn_pool.norm.weight", "attn_pool.norm.bias",
         "attn_pool.mlp.fc1.weight", "attn_pool.mlp.fc1.bias", "attn_pool.mlp.fc2.weight",
         "attn_pool.mlp.fc2.bias"]


def matches(keys):
    return "patch_embed.proj.weight" in keys or any(
        k.startswith("blocks.") and k.endswith(".attn.qkv.weight") for k in keys)


def _reject(keys):
    reject_features(keys, _UNSUPPORTED, FAMILY)
    for key in sorted(keys):
        m = re.match(r"^(blocks\.\d+\.norm[12]|norm|norm_pre|fc_norm)\.weight$", key)
        if m and m.group(1) + ".bias" not in keys:
            raise ConvertError(f"{FAMILY} checkpoint uses RMSNorm (tensor {key} has no "
                               f"{m.group(1)}.bias); the .ovit format cannot express it")
    if "pos_embed" not in keys:
        raise ConvertError(f"{FAMILY} checkpoint has no pos_embed (pos_embed='none' or a "
                           f"relative/rotary scheme); the .ovit format needs an absolute one")
    if "reg_token" in keys and "dist_token" in keys:
        raise ConvertError(f"{FAMILY} checkpoint has both reg_token and dist_token, which "
                           f"no timm model combines")
    if "norm.weight" in keys and "fc_norm.weight" in keys:
        # With fc_norm, timm makes `norm` an Identity: a checkpoint with both is not timm's.
        raise ConvertError(f"{FAMILY} checkpoint has both norm.* and fc_norm.*, which timm "
                           f"never uses together")


def to_canonical(src, arch=None):
    """`arch`: the TimmArchitecture timm's registration describes (timm_architecture.py), whose
    blocks timm_blocks.py reads; None: a plain VisionTransformer known only from its tensors."""
    keys = set(src)
    if arch is None:
        _reject(keys)
    depth = block_count(keys, _BLOCK, FAMILY)
    # Block 0 decides; a block that differs then shows up as a missing or unexpected key.
    qkv_bias = "blocks.0.attn.qkv.bias" in keys
    distilled = "dist_token" in keys or "head_dist.weight" in keys
    map_pool = any(k.startswith("attn_pool.") for k in keys)
    head = "head.weight" in keys
    rms = arch is not None and arch.norm == "rmsnorm"
    pos_embed = arch is None or "no_pos_embed" not in arch.features

    required = ["patch_embed.proj.weight"] + (["pos_embed"] if pos_embed else [])
    optional = ["patch_embed.proj.bias", "cls_token", "reg_token", "norm_pre.weight", "norm_pre.bias",
                "norm.weight", "norm.bias", "fc_norm.weight", "fc_norm.bias", "head.bias"]
    if arch is not None and "embed_norm" in arch.features:
        required += ["patch_embed.norm.weight"] + ([] if rms else ["patch_embed.norm.bias"])
    if arch is not None and arch.rope is not None and arch.rope.kind == "mixed":
        required.append("rope.freqs")
    if head:
        required.append("head.weight")
    if distilled:
        required += ["cls_token", "dist_token", "head_dist.weight", "head_dist.bias"]
    if map_pool:
        required += [n for n in _POOL if not (rms and n == "attn_pool.norm.bias")]
        optional += ["attn_pool.q.bias", "attn_pool.kv.bias"]
    out, origin, notes, rel_pos_params = {}, {}, [], {}
    if arch is not None and arch.rel_pos is not None and arch.rel_pos.shared:
        names = [n for n in sorted(keys) if n.startswith("shared_rel_pos.")]
        required += names
        rel_pos_params["shared"] = {n[len("shared_rel_pos."):]: as_f32(n, src[n]) for n in names}
    if arch is not None:
        # The blocks as timm's class builds them; every block tensor must be read by them.
        for i in range(depth):
            try:
                optional += sorted(timm_blocks.map_block(src, arch, i, out, origin, rel_pos_params))
            except ValueError as e:   # numpy: tensors that cannot be joined or multiplied
                raise ConvertError(f"{FAMILY} checkpoint: the tensors of blocks.{i} have inconsistent shapes "
                                   f"for timm's {arch.cls} ({e})") from None
    else:
        for i in range(depth):
            p = f"blocks.{i}."
            required += [p + s for s in _BLOCK_WEIGHTS]
            optional += [p + s for s in _BLOCK_BIASES] + [p + "ls1.gamma", p + "ls2.gamma"]
            if qkv_bias:
                required.append(p + "attn.qkv.bias")
    expect_keys(keys, required, optional, FAMILY)

    def put(canonical, name, array=None):
        out[canonical] = as_f32(name, src[name]) if array is None else array
        origin[canonical] = name

    def put_norm(canonical, name):
        put(canonical + ".weight", name + ".weight")
        if not rms:
            put(canonical + ".bias", name + ".bias")

    def put_bias(canonical, name, width):
        if name in keys:
            put(canonical, name)
        else:
            out[canonical], origin[canonical] = np.zeros(width, np.float32), f"zeros (no {name})"

    put("patch_embed.weight", "patch_embed.proj.weight")
    expect_ndim("patch_embed.proj.weight", out["patch_embed.weight"], 4)
    dim = out["patch_embed.weight"].shape[0]
    put_bias("patch_embed.bias", "patch_embed.proj.bias", dim)
    if "patch_embed.proj.bias" not in keys:
        notes.append("the patch embedding has no bias (timm pre_norm, CLIP): zero bias")

    tokens = [(name, squeeze_leading(name, as_f32(name, src[name]), 2))
              for name in ("cls_token", "reg_token", "dist_token") if name in keys]
    for name, token in tokens:
        if token.shape[1] != dim:
            raise ConvertError(f"tensor {name} has shape {shape_str(src[name].shape)}; its width "
                               f"differs from the embedding width {dim} (patch_embed.proj.weight)")
    if tokens:
        put("prefix_tokens", tokens[0][0], np.concatenate([t for _, t in tokens], axis=0))
        origin["prefix_tokens"] = " + ".join(name for name, _ in tokens)
    if pos_embed:
        put("pos_embed", "pos_embed", squeeze_leading("pos_embed", as_f32("pos_embed", src["pos_embed"]), 2))
    if "patch_embed.norm.weight" in keys and arch is not None:
        put_norm("embed_norm", "patch_embed.norm")
    if "norm_pre.weight" in keys:
        put_norm("norm_pre", "norm_pre")

    folded = 0
    for i in range(depth if arch is None else 0):
        p = f"blocks.{i}."
        for s in _BLOCK_WEIGHTS:
            put(p + s, p + s)
        if qkv_bias:
            put(p + "attn.qkv.bias", p + "attn.qkv.bias")
        put_bias(p + "attn.proj.bias", p + "attn.proj.bias", out[p + "attn.proj.weight"].shape[0])
        put_bias(p + "mlp.fc1.bias", p + "mlp.fc1.bias", out[p + "mlp.fc1.weight"].shape[0])
        put_bias(p + "mlp.fc2.bias", p + "mlp.fc2.bias", out[p + "mlp.fc2.weight"].shape[0])
        _check_plain_mlp(out, origin, p)
        # LayerScale: x + gamma * (W a + b) == x + (gamma[:, None] * W) a + gamma * b,
        # so folding gamma into the output rows of proj / fc2 is exact algebra.
        for gamma_name, layer in ((p + "ls1.gamma", p + "attn.proj"), (p + "ls2.gamma", p + "mlp.fc2")):
            if gamma_name in keys:
                gamma = squeeze_leading(gamma_name, as_f32(gamma_name, src[gamma_name]), 1)
                weight, bias = out[layer + ".weight"], out[layer + ".bias"]
                if weight.ndim != 2 or gamma.shape[0] != weight.shape[0] or bias.shape != gamma.shape:
                    raise ConvertError(f"tensor {gamma_name} has shape {shape_str(gamma.shape)}, which "
                                       f"does not match {layer}.weight {shape_str(weight.shape)}")
                out[layer + ".weight"] = weight * gamma[:, None]
                out[layer + ".bias"] = bias * gamma
                origin[layer + ".weight"] += f" × {gamma_name}"
                origin[layer + ".bias"] += f" × {gamma_name}"
                folded += 1
    if folded:
        notes.append(f"folded {folded} LayerScale gamma vector(s) into attn.proj / mlp.fc2")

    if "norm.weight" in keys:
        put_norm("norm", "norm")
    if map_pool:
        _attention_pool(src, keys, put, put_norm, put_bias, out, origin)
    if "fc_norm.weight" in keys:
        put_norm("head_norm", "fc_norm")
    if head:
        put("head.weight", "head.weight")
        put_bias("head.bias", "head.bias", out["head.weight"].shape[0])
    if distilled:
        put("head_dist.weight", "head_dist.weight")
        put("head_dist.bias", "head_dist.bias")
    mapped = MappedCheckpoint(FAMILY, out, origin, depth, fc_norm="fc_norm.weight" in keys, notes=notes,
                              class_token="cls_token" in keys)
    if arch is not None:
        mapped.features = list(arch.features)
        mapped.rope = arch.rope
        mapped.rel_pos, mapped.rel_pos_params = arch.rel_pos, rel_pos_params
        if "rope.freqs" in keys:
            mapped.rope_freqs = as_f32("rope.freqs", src["rope.freqs"])
    return mapped


def _check_plain_mlp(out, origin, p):
    """A packed SwiGLU (timm SwiGLUPacked, DINOv2-g) has an fc1 twice as wide as fc2's input."""
    fc1, fc2 = out[p + "mlp.fc1.weight"], out[p + "mlp.fc2.weight"]
    if fc1.ndim == 2 and fc2.ndim == 2 and fc1.shape[0] == 2 * fc2.shape[1]:
        raise ConvertError(f"{FAMILY} checkpoint uses a gated (SwiGLU) MLP: {origin[p + 'mlp.fc1.weight']} "
                           f"{shape_str(fc1.shape)} is twice as wide as {origin[p + 'mlp.fc2.weight']} "
                           f"{shape_str(fc2.shape)} reads; the .ovit format cannot express it")


def _attention_pool(src, keys, put, put_norm, put_bias, out, origin):
    """timm AttentionPoolLatent with one latent: the query is latent · Wqᵀ + bq for every
    image, so it is computed here, once, in float64."""
    latent = as_f32("attn_pool.latent", src["attn_pool.latent"])
    dim = out["patch_embed.weight"].shape[0]
    if latent.shape != (1, 1, dim):
        raise ConvertError(f"tensor attn_pool.latent has shape {shape_str(latent.shape)}; only one "
                           f"latent query of width {dim} ([1, 1, {dim}]) is supported")
    q_weight = as_f32("attn_pool.q.weight", src["attn_pool.q.weight"])
    if q_weight.shape != (dim, dim):
        raise ConvertError(f"tensor attn_pool.q.weight has shape {shape_str(q_weight.shape)}, "
                           f"expected [{dim}, {dim}]")
    q_bias = as_f32("attn_pool.q.bias", src["attn_pool.q.bias"]) if "attn_pool.q.bias" in keys \
        else np.zeros(dim, np.float32)
    query = latent.reshape(dim).astype(np.float64) @ q_weight.astype(np.float64).T + q_bias
    out["attn_pool.query"] = as_f32("attn_pool.query", query)
    origin["attn_pool.query"] = "attn_pool.latent · attn_pool.q"
    put("attn_pool.kv.weight", "attn_pool.kv.weight")
    put_bias("attn_pool.kv.bias", "attn_pool.kv.bias", out["attn_pool.kv.weight"].shape[0])
    put("attn_pool.proj.weight", "attn_pool.proj.weight")
    put("attn_pool.proj.bias", "attn_pool.proj.bias")
    put_norm("attn_pool.norm", "attn_pool.norm")
    for layer in ("fc1", "fc2"):
        put(f"attn_pool.{layer}.weight", f"attn_pool.mlp.{layer}.weight")
        put(f"attn_pool.{layer}.bias", f"attn_pool.mlp.{layer}.bias")
