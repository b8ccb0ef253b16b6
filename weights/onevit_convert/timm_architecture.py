"""What a timm model's constructor arguments build, read as timm's classes read them.

timm_registry.py gives a name's class and arguments (class defaults, registration, hub
model_args); this module says what that class makes of them: heads, norm kind and eps, MLP
activation, pooling, tokens and which layers exist — and which of the model-file features
(features.py) and which not-yet-expressible layers (refusals) its architecture has. It is
decided from the arguments alone, never from which tensors a checkpoint happens to hold:
an axial RoPE, for one, has no tensors at all.

VisionTransformer (vision_transformer.py, deit.py) and Eva (eva.py) are read here; their
constructors are timm's, summarised next to each reading.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

# timm act_layer (resolved by timm_registry) → arch.gelu.
GELU_ACTS = {"gelu": "erf", "gelu_tanh": "tanh", "quick_gelu": "quick"}
POOLS = ("token", "avg", "map")


@dataclass
class Rope:
    """timm's rotary embedding settings (Eva's rope_* arguments)."""
    kind: str                         # "cat" (axial), "mixed" (learned per block), "dinov3"
    temperature: float
    grid_offset: float
    grid_indexing: str                # "ij" | "xy"
    rotate_half: bool                 # layout "half", else "interleaved"
    ref_feat_shape: Optional[Tuple[int, int]]


@dataclass
class RelPos:
    """timm VisionTransformerRelPos's relative position bias settings."""
    mode: str                         # RelPosMlp mode: "cr" (rel_pos_type 'mlp') | "swin" ('mlp_swin')
    shared: bool                      # one bias for every block (shared_rel_pos)


@dataclass
class TimmArchitecture:
    cls: str
    heads: int
    norm: str                         # "layernorm" | "rmsnorm"
    norm_eps: float
    gelu: Optional[str]               # arch.gelu of the MLP (None: no GELU MLP, e.g. SwiGLU)
    global_pool: str
    distilled: bool = False
    pool_include_prefix: bool = False
    block: str = "pre_norm"           # "pre_norm" | "post_norm" | "parallel" | "parallel_things"
    mlp: str = "mlp"                  # "mlp" | "glu_packed" (fc1 = [gate; value]) | "glu_split" (fc1_g, fc1_x)
    gate_last: bool = False           # glu_packed: the gate is fc1's second half (timm GluMlp gate_last)
    qkv: str = "fused"                # "fused" (qkv) | "qv_bias" (Eva: qkv + q_bias, v_bias) | "split" (q/k/v_proj)
    rope: Optional[Rope] = None
    rel_pos: Optional[RelPos] = None
    pool_heads: int = 0               # attn_pool_shape: the attention pool's heads, and ...
    pool_prefix: bool = False         # ... whether it attends over the prefix tokens too
    features: List[str] = field(default_factory=list)   # model-file features (features.py), in FORMAT order
    refusals: List[str] = field(default_factory=list)   # layers no feature expresses yet


def _layer_class(value):
    return value.get("class") if isinstance(value, dict) else value


def _norm(args, key, arch_refusals, default=None):
    spec = args.get(key) or default
    if spec is None:
        return None
    if spec.get("norm") not in ("layernorm", "rmsnorm"):
        arch_refusals.append(f"a {spec.get('norm')} norm layer ({key})")
    return spec


def _features(a, *, rms, embed_norm, no_pos, qk_norm, attn_norm, mlp_norm, pool_shape=False):
    named = [("rms_norm", rms), ("embed_norm", embed_norm), ("no_pos_embed", no_pos),
             ("qk_norm", qk_norm), ("rope", a.rope is not None), ("attn_norm", attn_norm),
             ("swiglu", a.mlp != "mlp"), ("mlp_norm", mlp_norm), ("post_norm", a.block == "post_norm"),
             ("parallel", a.block == "parallel"), ("rel_pos_bias", a.rel_pos is not None),
             ("attn_pool_shape", pool_shape)]
    a.features = [name for name, used in named if used]


def _pool(a, refusals):
    if a.global_pool not in POOLS:
        refusals.append(f"global_pool={a.global_pool!r} (only 'token', 'avg' and 'map')")


def vision_transformer(args, distilled):
    """timm VisionTransformer.__init__: norm_layer None → LayerNorm (eps 1e-6), act_layer None →
    GELU; block_fn/mlp_layer/attn_layer pick the block, MLP and attention classes. (Tokens and the
    outer norms, norm_pre/norm/fc_norm, are tensors the checkpoint shows.)"""
    refusals = []
    norm = _norm(args, "norm_layer", refusals, {"norm": "layernorm", "eps": 1e-6, "bias": True})
    embed_norm = _norm(args, "embed_norm_layer", refusals)
    act = (args.get("act_layer") or {"act": "gelu"})["act"]
    block = _layer_class(args.get("block_fn")) or "Block"
    mlp_layer = args.get("mlp_layer") or {"class": "Mlp"}
    attn = _layer_class(args.get("attn_layer")) or "Attention"
    a = TimmArchitecture(cls="VisionTransformerDistilled" if distilled else "VisionTransformer",
                         heads=int(args["num_heads"]), norm=norm["norm"], norm_eps=float(norm["eps"]),
                         gelu=None, global_pool=args.get("global_pool") or "", distilled=distilled,
                         pool_include_prefix=bool(args.get("pool_include_prefix")))
    _pool(a, refusals)
    if a.global_pool == "map" and a.pool_include_prefix:
        a.pool_heads, a.pool_prefix = a.heads, True
    if block == "ResPostBlock":
        a.block = "post_norm"
    elif block == "ParallelScalingBlock":
        a.block = "parallel"
    elif block == "ParallelThingsBlock":
        a.block = "parallel_things"
    elif block == "DiffParallelScalingBlock":
        refusals.append("differential attention in parallel blocks (DiffParallelScalingBlock)")
    elif block != "Block":
        refusals.append(f"block_fn={block}")
    if attn in ("diff", "DiffAttention"):
        refusals.append("differential attention (attn_layer='diff')")
    elif attn not in ("Attention", "attention", "sdpa", "eager"):
        refusals.append(f"attn_layer={attn}")

    mlp_class = mlp_layer.get("class")
    if a.block == "parallel":
        pass                          # ParallelScalingBlock builds its own MLP (mlp_layer unused)
    elif mlp_class == "Mlp":
        a.mlp = "mlp"
    elif mlp_class == "SwiGLU":
        a.mlp, act = "glu_split", "silu"
    elif mlp_class in ("GluMlp", "SwiGLUPacked"):
        kw = mlp_layer.get("kwargs", {})
        a.mlp, act = "glu_packed", kw.get("act_layer", {"act": "silu" if mlp_class == "SwiGLUPacked" else
                                                         "sigmoid"})["act"]
        a.gate_last = bool(kw.get("gate_last", mlp_class == "GluMlp"))
    else:
        refusals.append(f"mlp_layer={mlp_class}")
    if a.mlp == "mlp":
        if act in GELU_ACTS:
            a.gelu = GELU_ACTS[act]
        else:
            refusals.append(f"an MLP activation {act!r} (only GELU, its tanh form and QuickGELU)")
    elif act != "silu":
        refusals.append(f"a gated MLP with a {act!r} gate (only SwiGLU's SiLU)")
    if embed_norm is not None and (embed_norm["norm"], embed_norm["eps"]) != (norm["norm"], norm["eps"]):
        refusals.append(f"a patch-embedding norm ({embed_norm['norm']}, eps {embed_norm['eps']:g}) unlike the "
                        f"model's other norms ({norm['norm']}, eps {norm['eps']:g})")
    if _layer_class(args.get("embed_layer")) not in (None, "PatchEmbed"):
        refusals.append(f"embed_layer={_layer_class(args.get('embed_layer'))} (a hybrid or other stem)")
    _features(a, rms=norm["norm"] == "rmsnorm", embed_norm=embed_norm is not None,
              no_pos=args.get("pos_embed") in ("", "none", None), qk_norm=bool(args.get("qk_norm")),
              attn_norm=bool(args.get("scale_attn_norm")), mlp_norm=bool(args.get("scale_mlp_norm")),
              pool_shape=a.pool_prefix)
    a.refusals = refusals
    return a


def eva(args):
    """timm Eva.__init__: norm_layer LayerNorm (timm's, eps 1e-6) unless registered otherwise; the
    blocks' MLP GELU (nn.GELU); global_pool 'avg' by default (the pooling's norms are tensors the
    checkpoint shows); use_abs_pos_emb / use_rot_pos_emb with rope_type 'cat' | 'mixed' |
    'dinov3'; qkv_bias with a fused qkv is q_bias + v_bias (k has none); swiglu_mlp packs fc1
    unless scale_mlp or swiglu_align_to asks for SwiGLU's split fc1_g / fc1_x; scale_mlp is a norm
    inside the MLP, scale_attn_inner one inside attention; use_post_norm → EvaBlockPostNorm."""
    refusals = []
    norm = _norm(args, "norm_layer", refusals, {"norm": "layernorm", "eps": 1e-6, "bias": True})
    heads = int(args["num_heads"])
    a = TimmArchitecture(cls="Eva", heads=heads, norm=norm["norm"], norm_eps=float(norm["eps"]), gelu="erf",
                         global_pool=args.get("global_pool") or "")
    _pool(a, refusals)
    # Eva's attention pool attends over every token, prefix tokens included (Eva.pool), with
    # heads and MLP of its own (attn_pool_num_heads, attn_pool_mlp_ratio): FORMAT.md's map pool does neither.
    pool_shape = a.global_pool == "map"
    if pool_shape:
        a.pool_heads, a.pool_prefix = int(args.get("attn_pool_num_heads") or heads), True
    if args.get("use_post_norm"):
        a.block = "post_norm"
    kv = args.get("num_kv_heads")
    if kv is not None and any(int(h) != heads for h in (kv if isinstance(kv, list) else [kv])):
        refusals.append("grouped-query attention (num_kv_heads)")
    if args.get("attn_type", "eva") == "rope":
        a.qkv = "fused" if args.get("qkv_fused", True) else "split"
    else:
        a.qkv = ("qv_bias" if args.get("qkv_bias", True) else "fused") if args.get("qkv_fused", True) else "split"
    if args.get("swiglu_mlp"):
        a.mlp = "glu_split" if args.get("scale_mlp") or args.get("swiglu_align_to") else "glu_packed"
        a.gelu = None
    if args.get("use_rot_pos_emb"):
        kind = args.get("rope_type") or "cat"
        if kind not in ("cat", "mixed", "dinov3"):
            refusals.append(f"rope_type={kind!r} (only 'cat', 'mixed' and 'dinov3')")
        ref = args.get("ref_feat_shape")
        a.rope = Rope(kind=kind, temperature=float(args.get("rope_temperature", 10000.0)),
                      grid_offset=float(args.get("rope_grid_offset") or 0.0),
                      grid_indexing=args.get("rope_grid_indexing") or "ij",
                      rotate_half=bool(args.get("rope_rotate_half")),
                      ref_feat_shape=None if ref is None else tuple(ref) if isinstance(ref, list) else (ref, ref))
    _features(a, rms=norm["norm"] == "rmsnorm", embed_norm=False, no_pos=not args.get("use_abs_pos_emb", True),
              qk_norm=bool(args.get("qk_norm")), attn_norm=bool(args.get("scale_attn_inner")),
              mlp_norm=bool(args.get("scale_mlp")), pool_shape=pool_shape)
    a.refusals = refusals
    return a


def vision_transformer_relpos(args):
    """timm VisionTransformerRelPos.__init__: no absolute position embedding; norm_layer None →
    nn.LayerNorm (eps 1e-6), act_layer None → GELU; block_fn RelPosBlock (pre-norm) or
    ResPostRelPosBlock (post-norm); rel_pos_type 'mlp' (RelPosMlp 'cr', 'swin' if named so) or a
    RelPosBias table, per block or shared; global_pool 'avg' (patch tokens) or 'token'."""
    refusals = []
    norm = _norm(args, "norm_layer", refusals, {"norm": "layernorm", "eps": 1e-6, "bias": True})
    act = (args.get("act_layer") or {"act": "gelu"})["act"]
    a = TimmArchitecture(cls="VisionTransformerRelPos", heads=int(args["num_heads"]), norm=norm["norm"],
                         norm_eps=float(norm["eps"]), gelu=GELU_ACTS.get(act), global_pool=args.get("global_pool") or "")
    _pool(a, refusals)
    if a.gelu is None:
        refusals.append(f"an MLP activation {act!r} (only GELU, its tanh form and QuickGELU)")
    block = _layer_class(args.get("block_fn")) or "RelPosBlock"
    if block == "ResPostRelPosBlock":
        a.block = "post_norm"
    elif block != "RelPosBlock":
        refusals.append(f"block_fn={block}")
    kind = args.get("rel_pos_type") or "mlp"
    if kind.startswith("mlp"):
        a.rel_pos = RelPos(mode="swin" if "swin" in kind else "cr", shared=bool(args.get("shared_rel_pos")))
    else:
        refusals.append(f"a learned relative position table (rel_pos_type={kind!r}), which this converter does not read")
    _features(a, rms=norm["norm"] == "rmsnorm", embed_norm=False, no_pos=True, qk_norm=bool(args.get("qk_norm")),
              attn_norm=False, mlp_norm=False)
    a.refusals = refusals
    return a


def describe(reg, args):
    """The TimmArchitecture of registration `reg` built with constructor arguments `args`."""
    if reg.cls == "Eva":
        return eva(args)
    if reg.cls == "VisionTransformerRelPos":
        return vision_transformer_relpos(args)
    return vision_transformer(args, distilled=reg.cls == "VisionTransformerDistilled")
