"""Hugging Face transformers vision checkpoints (model.safetensors as save_pretrained and the hub
write them) → canonical tensors.

Two encoder layouts, under a model prefix (none for a base model, `vit.`, `deit.`, `dinov2.`,
`vision_model.`), and DINOv3's (transformers_dinov3.py):

  BERT-style (ViT, DeiT, DINOv2)
    embeddings.{cls_token, position_embeddings, patch_embeddings.projection.*}
      [+ distillation_token (DeiT), register_tokens (DINOv2 with registers), mask_token (unused)]
    encoder.layer.N.{layernorm_before, attention.attention.{query,key,value}, attention.output.dense,
                     layernorm_after, intermediate.dense, output.dense}             ViT, DeiT
    encoder.layer.N.{norm1, attention.attention.{query,key,value}, attention.output.dense,
                     layer_scale1.lambda1, norm2, mlp.fc1, mlp.fc2, layer_scale2.lambda1}   DINOv2
      (use_swiglu_ffn, DINOv2-giant: mlp.weights_in [gate; value], mlp.weights_out: the swiglu feature)
    layernorm; pooler.dense (ViTModel: dense + tanh on the class token)
  CLIP-style (CLIP, SigLIP)
    embeddings.{patch_embedding, class_embedding (CLIP), position_embedding}; pre_layrnorm (CLIP)
    encoder.layers.N.{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}
    post_layernorm (CLIP: on the pooled class token only; SigLIP: on every token)
    head.{probe, attention.{in_proj_*, out_proj}, layernorm, mlp.*} (SigLIP's attention pooling)

and the heads around them: `classifier` (ViT, DeiT: token 0; DINOv2: concat(class token, mean of
the patch tokens)), DeiT's `cls_classifier` + `distillation_classifier`, CLIP's
`visual_projection`. A full CLIPModel / SiglipModel's text tower (`text_model.*`,
`text_projection`, `logit_scale`, `logit_bias`) is not read. q, k and v are stacked into the
canonical qkv; LayerScale is folded into the output projections; a layer without bias gets zeros.

The architecture (heads, eps, activation, sizes) comes from config.json (transformers_config.py).
The embedding is what the library's users index: the pooler output (ViTModel with a pooler,
DINOv2, CLIP, SigLIP), CLIP's get_image_features (after visual_projection), else the
classifier's input.
"""

import re

import numpy as np

from . import transformers_dinov3
from .errors import ConvertError
from .mapped import MappedCheckpoint
from .tensors import as_f32, block_count, expect_keys, expect_ndim, shape_str, squeeze_leading

FAMILY = "hf"
DESCRIPTION = ("Hugging Face transformers ViT, DeiT, DINOv2, DINOv3, CLIP, SigLIP ([vit.|deit.|dinov2.|"
               "vision_model.]embeddings.patch_embedding[s.projection].weight, [...]encoder.layer.N.attention."
               "attention.{query,key,value}.* or [...]encoder.layers.N.self_attn.{q,k,v,out}_proj.* or "
               "layer.N.attention.{q,k,v,o}_proj.* (DINOv3), classifier.*, visual_projection.*)")
# What a full CLIPModel / SiglipModel holds besides its vision tower.
_TEXT = re.compile(r"^(text_model\.|text_projection\.|logit_scale$|logit_bias$)")
_PREFIXES = ("vit.", "deit.", "dinov2.", "dinov2_with_registers.", "vision_model.", "")
_QKV = ("query", "key", "value")


def _prefix(keys):
    for p in _PREFIXES:
        if p + "embeddings.patch_embeddings.projection.weight" in keys or \
                p + "embeddings.patch_embedding.weight" in keys:
            return p
    return None


def matches(keys):
    return _prefix(keys) is not None or transformers_dinov3.layers_prefix(keys) is not None


def layout(keys):
    """"bert" (ViT, DeiT, DINOv2), "clip" (CLIP, SigLIP) or "dinov3", and the model prefix (DINOv3:
    its layers')."""
    p = transformers_dinov3.layers_prefix(keys)
    if p is not None:
        return "dinov3", p
    p = _prefix(keys)
    return ("bert" if p + "embeddings.patch_embeddings.projection.weight" in keys else "clip"), p


class _Mapper:
    """Collects canonical tensors with the checkpoint names they came from."""

    def __init__(self, src):
        self.src, self.out, self.origin = src, {}, {}

    def get(self, name):
        return as_f32(name, self.src[name])

    def put(self, canonical, name, array=None):
        self.out[canonical] = self.get(name) if array is None else array
        self.origin[canonical] = name

    def linear(self, canonical, name, width=None):
        """canonical.weight/.bias from name.weight/.bias; no bias: zeros."""
        self.put(canonical + ".weight", name + ".weight")
        expect_ndim(name + ".weight", self.out[canonical + ".weight"], 2)
        if name + ".bias" in self.src:
            self.put(canonical + ".bias", name + ".bias")
        else:
            rows = self.out[canonical + ".weight"].shape[0]
            self.out[canonical + ".bias"], self.origin[canonical + ".bias"] = np.zeros(rows, np.float32), "zeros"

    def norm(self, canonical, name):
        self.put(canonical + ".weight", name + ".weight")
        self.put(canonical + ".bias", name + ".bias")

    def stacked(self, canonical, names, bias_optional=False):
        """Rows of the q, k, v layers stacked into one canonical qkv (each head-major already)."""
        for part in ("weight", "bias"):
            present = [n + "." + part in self.src for n in names]
            if part == "bias" and not any(present) and bias_optional:
                return
            arrays = [self.get(n + "." + part) for n in names]
            for n, a in zip(names, arrays):
                if a.shape != arrays[0].shape or a.ndim != (2 if part == "weight" else 1):
                    raise ConvertError(f"tensor {n}.{part} has shape {shape_str(a.shape)}; the query, key and "
                                       f"value {part}s must all be {shape_str(arrays[0].shape)}")
            self.out[f"{canonical}.{part}"] = np.concatenate(arrays, axis=0)
            self.origin[f"{canonical}.{part}"] = "{" + ",".join(names) + "}." + part

    def prefix_tokens(self, names, dim):
        """canonical prefix_tokens from the token tensors `names` ([1, n, D] each), in order; returns
        each one's rows."""
        prefix = [squeeze_leading(n, self.get(n), 2) for n in names]
        for n, t in zip(names, prefix):
            if t.shape[1] != dim:
                raise ConvertError(f"tensor {n} has shape {shape_str(self.src[n].shape)}; its width differs from "
                                   f"the embedding width {dim}")
        self.out["prefix_tokens"] = np.concatenate(prefix, axis=0)
        self.origin["prefix_tokens"] = " + ".join(names)
        return prefix

    def fold_scale(self, layer, gamma_name):
        """LayerScale: x + γ·(W a + b) = x + (γ W) a + γ b."""
        gamma = squeeze_leading(gamma_name, self.get(gamma_name), 1)
        w, b = self.out[layer + ".weight"], self.out[layer + ".bias"]
        if gamma.shape != b.shape:
            raise ConvertError(f"tensor {gamma_name} has shape {shape_str(gamma.shape)}; expected "
                               f"{shape_str(b.shape)}, the rows of {self.origin[layer + '.weight']}")
        self.out[layer + ".weight"], self.out[layer + ".bias"] = w * gamma[:, None], b * gamma
        self.origin[layer + ".weight"] += f" × {gamma_name}"


def to_canonical(src):
    keys = {k for k in src if not _TEXT.match(k)}
    src = {k: src[k] for k in keys}
    kind, p = layout(keys)
    if kind == "dinov3":
        return transformers_dinov3.to_canonical(_Mapper(src), keys, p)
    return _bert(src, keys, p) if kind == "bert" else _clip(src, keys, p)


def _bert(src, keys, p):
    dinov2 = p + "encoder.layer.0.norm1.weight" in keys
    depth = block_count(keys, re.escape(p) + r"encoder\.layer\.(\d+)\.", FAMILY)
    # Dinov2SwiGLUFFN as saved (transformers 5 splits weights_in into gate_proj/up_proj on loading only).
    swiglu = dinov2 and p + "encoder.layer.0.mlp.weights_in.weight" in keys
    e = p + "embeddings."
    fc = ("mlp.weights_in", "mlp.weights_out") if swiglu else ("mlp.fc1", "mlp.fc2")
    block = ({"norm1": "norm1", "attn.proj": "attention.output.dense", "norm2": "norm2", "mlp.fc1": fc[0],
              "mlp.fc2": fc[1]} if dinov2 else
             {"norm1": "layernorm_before", "attn.proj": "attention.output.dense", "norm2": "layernorm_after",
              "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"})
    tokens = [n for n in ("cls_token", "distillation_token", "register_tokens") if e + n in keys]
    heads = {"classifier": "classifier.weight" in keys,
             "teacher": "cls_classifier.weight" in keys, "pooler": p + "pooler.dense.weight" in keys}
    required = [e + "cls_token", e + "position_embeddings", e + "patch_embeddings.projection.weight",
                p + "layernorm.weight", p + "layernorm.bias"]
    optional = [e + "patch_embeddings.projection.bias", e + "mask_token", e + "distillation_token",
                e + "register_tokens", p + "pooler.dense.weight", p + "pooler.dense.bias",
                "classifier.weight", "classifier.bias", "cls_classifier.weight", "cls_classifier.bias",
                "distillation_classifier.weight", "distillation_classifier.bias"]
    qkv_bias = p + "encoder.layer.0.attention.attention.query.bias" in keys
    for i in range(depth):
        b = f"{p}encoder.layer.{i}."
        for theirs in block.values():
            required.append(b + theirs + ".weight")
            (required if "norm" in theirs or "layernorm" in theirs else optional).append(b + theirs + ".bias")
        required += [f"{b}attention.attention.{q}.weight" for q in _QKV]
        (required if qkv_bias else optional).extend(f"{b}attention.attention.{q}.bias" for q in _QKV)
        if dinov2:
            required += [b + "layer_scale1.lambda1", b + "layer_scale2.lambda1"]
    if heads["teacher"]:
        required += ["distillation_classifier.weight", e + "distillation_token"]
    if heads["pooler"] and (heads["classifier"] or heads["teacher"]):
        # ViTModel has the pooler, the classification models do not: a checkpoint with both was
        # trained with another model, whose output it is unclear this would reproduce.
        raise ConvertError(f"{FAMILY} checkpoint has a pooler ({p}pooler.dense.weight) and a classifier, which no "
                           f"transformers ViT class combines")
    expect_keys(keys, required, optional, FAMILY)

    m = _Mapper(src)
    m.put("patch_embed.weight", e + "patch_embeddings.projection.weight")
    expect_ndim(e + "patch_embeddings.projection.weight", m.out["patch_embed.weight"], 4)
    dim = m.out["patch_embed.weight"].shape[0]
    if e + "patch_embeddings.projection.bias" in keys:
        m.put("patch_embed.bias", e + "patch_embeddings.projection.bias")
    else:
        m.out["patch_embed.bias"], m.origin["patch_embed.bias"] = np.zeros(dim, np.float32), "zeros"
    prefix = m.prefix_tokens([e + n for n in tokens], dim)
    pos = squeeze_leading(e + "position_embeddings", m.get(e + "position_embeddings"), 2)
    if "register_tokens" in tokens:
        # DINOv2 with registers: the position embedding covers the class token and the patches;
        # the registers are inserted after it is added, so theirs are zero rows.
        registers = prefix[tokens.index("register_tokens")].shape[0]
        pos = np.concatenate([pos[:1], np.zeros((registers, pos.shape[1]), np.float32), pos[1:]], axis=0)
    m.out["pos_embed"], m.origin["pos_embed"] = pos, e + "position_embeddings"
    for i in range(depth):
        b, c = f"{p}encoder.layer.{i}.", f"blocks.{i}."
        m.norm(c + "norm1", b + block["norm1"])
        m.stacked(c + "attn.qkv", [f"{b}attention.attention.{q}" for q in _QKV], bias_optional=True)
        m.linear(c + "attn.proj", b + block["attn.proj"])
        m.norm(c + "norm2", b + block["norm2"])
        m.linear(c + "mlp.fc1", b + block["mlp.fc1"])
        m.linear(c + "mlp.fc2", b + block["mlp.fc2"])
        if dinov2:
            m.fold_scale(c + "attn.proj", b + "layer_scale1.lambda1")
            m.fold_scale(c + "mlp.fc2", b + "layer_scale2.lambda1")
    m.norm("norm", p + "layernorm")
    model = {"vit.": "ViT", "deit.": "DeiT", "dinov2.": "Dinov2", "dinov2_with_registers.": "Dinov2WithRegisters",
             "": "ViT"}[p]
    pool, embedding, act = "token", None, "none"
    if heads["teacher"]:
        m.linear("head", "cls_classifier")
        m.linear("head_dist", "distillation_classifier")
        embedding = "the mean of the normed class and distillation tokens (the two classifiers' inputs)"
    elif heads["classifier"]:
        m.linear("head", "classifier")
        if dinov2 and m.out["head.weight"].shape[1] == 2 * dim:
            pool = "token_and_mean_patches"
            embedding = f"{model}ForImageClassification's classifier input: concat(class token, mean of the patch tokens)"
        else:
            embedding = f"{model}ForImageClassification's classifier input (the normed class token)"
    elif heads["pooler"]:
        m.linear("pool_proj", p + "pooler.dense")
        act, embedding = "tanh", "ViTModel pooler_output (pooler.dense + tanh of the class token)"
    else:
        embedding = ("Dinov2Model pooler_output (the normed class token)" if dinov2 else
                     "ViTModel last_hidden_state[:, 0] (the normed class token)")
    mapped = MappedCheckpoint(FAMILY, m.out, m.origin, depth, pool=pool, pool_proj_act=act,
                              embedding=f"transformers {embedding}" if embedding else None)
    mapped.features = ["swiglu"] if swiglu else []
    return mapped


def _clip(src, keys, p):
    depth = block_count(keys, re.escape(p) + r"encoder\.layers\.(\d+)\.", FAMILY)
    e = p + "embeddings."
    clip = e + "class_embedding" in keys
    head = p + "head."
    siglip_head = head + "probe" in keys
    required = [e + "patch_embedding.weight", e + "position_embedding.weight",
                p + "post_layernorm.weight", p + "post_layernorm.bias"]
    optional = [e + "patch_embedding.bias", e + "position_ids", e + "class_embedding",
                p + "pre_layrnorm.weight", p + "pre_layrnorm.bias", "visual_projection.weight"]
    if siglip_head:
        required += [head + n for n in ("probe", "attention.in_proj_weight", "attention.out_proj.weight",
                                        "layernorm.weight", "layernorm.bias", "mlp.fc1.weight", "mlp.fc2.weight")]
        optional += [head + n for n in ("attention.in_proj_bias", "attention.out_proj.bias", "mlp.fc1.bias",
                                        "mlp.fc2.bias")]
    for i in range(depth):
        b = f"{p}encoder.layers.{i}."
        for n in ("layer_norm1", "layer_norm2"):
            required += [f"{b}{n}.weight", f"{b}{n}.bias"]
        for n in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1",
                  "mlp.fc2"):
            required.append(f"{b}{n}.weight")
            optional.append(f"{b}{n}.bias")
    expect_keys(keys, required, optional, FAMILY)
    if (p + "pre_layrnorm.weight" in keys) != clip:
        raise ConvertError(f"{FAMILY} checkpoint: " + ("a class embedding without pre_layrnorm" if clip else
                                                      "pre_layrnorm without a class embedding") +
                           " is neither CLIP's nor SigLIP's vision tower")

    m = _Mapper(src)
    m.put("patch_embed.weight", e + "patch_embedding.weight")
    expect_ndim(e + "patch_embedding.weight", m.out["patch_embed.weight"], 4)
    if e + "patch_embedding.bias" in keys:
        m.put("patch_embed.bias", e + "patch_embedding.bias")
    else:  # CLIP's patch embedding has no bias
        m.out["patch_embed.bias"] = np.zeros(m.out["patch_embed.weight"].shape[0], np.float32)
        m.origin["patch_embed.bias"] = "zeros"
    pos = m.get(e + "position_embedding.weight")
    expect_ndim(e + "position_embedding.weight", pos, 2)
    m.out["pos_embed"], m.origin["pos_embed"] = pos, e + "position_embedding.weight"
    if clip:
        m.put("prefix_tokens", e + "class_embedding", squeeze_leading(e + "class_embedding",
                                                                     m.get(e + "class_embedding")[None], 2))
        m.norm("norm_pre", p + "pre_layrnorm")
    for i in range(depth):
        b, c = f"{p}encoder.layers.{i}.", f"blocks.{i}."
        m.norm(c + "norm1", b + "layer_norm1")
        attn = [f"{b}self_attn.{q}_proj" for q in "qkv"]
        has_bias = [a + ".bias" in keys for a in attn]
        if any(has_bias) and not all(has_bias):
            for a in attn:  # a missing bias among present ones: zeros, as a bias-free Linear
                if a + ".bias" not in keys:
                    src[a + ".bias"] = np.zeros(src[a + ".weight"].shape[0], np.float32)
        m.stacked(c + "attn.qkv", attn, bias_optional=True)
        m.linear(c + "attn.proj", b + "self_attn.out_proj")
        m.norm(c + "norm2", b + "layer_norm2")
        m.linear(c + "mlp.fc1", b + "mlp.fc1")
        m.linear(c + "mlp.fc2", b + "mlp.fc2")
    if clip:
        # CLIP's post_layernorm normalises the pooled class token only: head_norm, no final norm.
        m.norm("head_norm", p + "post_layernorm")
        pool = "token"
        if "visual_projection.weight" in keys:
            m.linear("pool_proj", "visual_projection")
            embedding = "CLIPModel.get_image_features (visual_projection of pooler_output)"
        else:
            embedding = "CLIPVisionModel pooler_output (post_layernorm of the class token)"
    else:
        m.norm("norm", p + "post_layernorm")
        if not siglip_head:
            raise ConvertError(f"{FAMILY} checkpoint: a SigLIP vision tower without its attention-pooling head "
                               f"({head}probe; vision_use_head=False) has no pooled output onevit reproduces")
        _siglip_head(m, head, keys)
        pool, embedding = "map", "SiglipModel.get_image_features (pooler_output, the attention-pooling head)"
    return MappedCheckpoint(FAMILY, m.out, m.origin, depth, class_token=clip, pool=pool,
                            embedding=f"transformers {embedding}")


def _siglip_head(m, head, keys):
    """SiglipMultiheadAttentionPoolingHead: nn.MultiheadAttention(probe, x, x) (in_proj rows q, k, v),
    then x + mlp(layernorm(x)). The probe's query is the same for every image: computed once."""
    dim = m.out["patch_embed.weight"].shape[0]
    in_w = m.get(head + "attention.in_proj_weight")
    in_b = m.get(head + "attention.in_proj_bias") if head + "attention.in_proj_bias" in keys else \
        np.zeros(3 * dim, np.float32)
    probe = m.get(head + "probe")
    if in_w.shape != (3 * dim, dim) or in_b.shape != (3 * dim,) or probe.size != dim:
        raise ConvertError(f"tensors {head}attention.in_proj_weight {shape_str(in_w.shape)}, "
                           f"{head}probe {shape_str(probe.shape)}: expected [{3 * dim}, {dim}] and [1, 1, {dim}]")
    query = probe.reshape(dim).astype(np.float64) @ in_w[:dim].astype(np.float64).T + in_b[:dim]
    m.out["attn_pool.query"], m.origin["attn_pool.query"] = as_f32(head + "probe", query), head + "probe · q"
    m.out["attn_pool.kv.weight"], m.origin["attn_pool.kv.weight"] = np.ascontiguousarray(in_w[dim:]), \
        head + "attention.in_proj_weight[k, v]"
    m.out["attn_pool.kv.bias"], m.origin["attn_pool.kv.bias"] = np.ascontiguousarray(in_b[dim:]), \
        head + "attention.in_proj_bias[k, v]"
    m.linear("attn_pool.proj", head + "attention.out_proj")
    m.norm("attn_pool.norm", head + "layernorm")
    m.linear("attn_pool.fc1", head + "mlp.fc1")
    m.linear("attn_pool.fc2", head + "mlp.fc2")
