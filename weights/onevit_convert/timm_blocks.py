"""One transformer block of a described timm model → the canonical block tensors.

The block classes timm builds (timm_architecture.TimmArchitecture says which) keep their
weights under different names; each becomes the canonical pre-norm block of FORMAT.md plus
the version 2 features' tensors (notes/format-v2.md):

  VisionTransformer Block / ResPostBlock: norm1, attn.qkv, attn.q_norm/k_norm, attn.norm, attn.proj,
      ls1.gamma, norm2, mlp.fc1 (or SwiGLU's fc1_g + fc1_x), mlp.norm, mlp.fc2, ls2.gamma;
  Eva's EvaBlock / EvaBlockPostNorm: the same with gamma_1/gamma_2 for LayerScale and either a qkv
      without bias plus q_bias and v_bias (k has none) or separate q_proj/k_proj/v_proj;
  ParallelScalingBlock: in_norm → norm1; in_proj's rows [mlp | q | k | v] → fc1 and qkv (mlp_bias
      when the projection has no bias); attn_out_proj/mlp_out_proj (or one out_proj over
      [attention | mlp]) → proj and fc2; its one LayerScale folded into both;
  ParallelThingsBlock: N attention and N MLP branches, each with its own pre-norm, summed: exactly
      one pre-norm block with N·heads heads and an N-times wider MLP, each branch's norm affine
      folded into its qkv/fc1 rows (LN_j(x) = n(x)·w_j + b_j, so W·LN_j(x) + c = (W·w_j)·n(x) +
      (W·b_j + c)) and the block's norms left as n(x) (weight 1, bias 0).
A gated MLP's fc1 is written [gate rows; value rows]. LayerScale is folded into proj / fc2.
Missing biases become zeros (float64 algebra, rounded once to float32).
"""

import numpy as np

from .errors import ConvertError
from .tensors import as_f32, shape_str, squeeze_leading


_REL_POS_MLP = ("mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias")


class BlockReader:
    """Reads one block's source tensors (`get`) and writes canonical ones (`put`)."""

    def __init__(self, src, arch, index, out, origin):
        self.src, self.arch, self.out, self.origin = src, arch, out, origin
        self.p = f"blocks.{index}."
        self.used = set()

    # -- source side
    def has(self, name):
        return self.p + name in self.src

    def get(self, name):
        key = self.p + name
        if key not in self.src:
            raise ConvertError(f"timm checkpoint lacks {key}, which timm's {self.arch.cls} builds "
                               f"({self._what()})")
        self.used.add(key)
        return as_f32(key, self.src[key])

    def maybe(self, name):
        return self.get(name) if self.has(name) else None

    def _what(self):
        return f"block {self.arch.block}, MLP {self.arch.mlp}, q/k/v {self.arch.qkv}"

    # -- canonical side
    def put(self, name, array, origin):
        self.out[self.p + name] = np.ascontiguousarray(array, dtype=np.float32)
        self.origin[self.p + name] = origin

    def norm(self, canonical, source):
        weight = self.get(source + ".weight")
        self.put(canonical + ".weight", weight, self.p + source + ".weight")
        if self.arch.norm == "layernorm":
            self.put(canonical + ".bias", self.get(source + ".bias"), self.p + source + ".bias")

    def weight_bias(self, source):
        """A linear layer's weight and bias (zeros when absent) in float64."""
        weight = self.get(source + ".weight").astype(np.float64)
        bias = self.maybe(source + ".bias")
        return weight, np.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64)

    def linear(self, canonical, source, bias=True, scale=None, scale_name=""):
        """weight and bias (zeros when absent), rows times `scale` (LayerScale) if given."""
        weight, b = self.weight_bias(source)
        origin_b = self.p + source + ".bias" if self.has(source + ".bias") else f"zeros (no {self.p}{source}.bias)"
        if scale is not None:
            if scale.shape != (weight.shape[0],):
                raise ConvertError(f"tensor {scale_name} has shape {shape_str(scale.shape)}, which does not "
                                   f"match {self.p}{source}.weight {shape_str(weight.shape)}")
            weight, b = weight * scale[:, None], b * scale
        suffix = f" × {scale_name}" if scale is not None else ""
        self.put(canonical + ".weight", weight, self.p + source + ".weight" + suffix)
        if bias:
            self.put(canonical + ".bias", b, origin_b + suffix)

    def gamma(self, name):
        if not self.has(name):
            return None
        return squeeze_leading(self.p + name, self.get(name), 1).astype(np.float64)


def map_block(src, arch, index, out, origin, rel_pos_params):
    """Writes block `index`'s canonical tensors into out/origin, its relative position MLP into
    rel_pos_params[index] (relpos.py makes the table once the grid is known); returns the source
    names it read."""
    r = BlockReader(src, arch, index, out, origin)
    if arch.rel_pos is not None and not arch.rel_pos.shared:
        rel_pos_params[index] = {name: r.get("attn.rel_pos." + name) for name in _REL_POS_MLP
                                 if name != "mlp.fc2.bias" or r.has("attn.rel_pos." + name)}
    if arch.block == "parallel":
        _parallel_scaling(r)
    elif arch.block == "parallel_things":
        _parallel_things(r)
    else:
        _block(r)
    return r.used


def _layer_scales(r):
    if r.arch.cls == "Eva":
        return ("gamma_1", r.gamma("gamma_1")), ("gamma_2", r.gamma("gamma_2"))
    return ("ls1.gamma", r.gamma("ls1.gamma")), ("ls2.gamma", r.gamma("ls2.gamma"))


def _block(r):
    a = r.arch
    (ls1_name, ls1), (ls2_name, ls2) = _layer_scales(r)
    if a.block == "post_norm" and (ls1 is not None or ls2 is not None):
        raise ConvertError(f"{r.p}: residual post-norm blocks have no LayerScale, but the checkpoint has "
                           f"{ls1_name if ls1 is not None else ls2_name}")
    r.norm("norm1", "norm1")
    _qkv(r)
    if "qk_norm" in a.features:
        r.norm("attn.q_norm", "attn.q_norm")
        r.norm("attn.k_norm", "attn.k_norm")
    if "attn_norm" in a.features:
        r.norm("attn.norm", "attn.norm")
    r.linear("attn.proj", "attn.proj", scale=ls1, scale_name=r.p + ls1_name)
    r.norm("norm2", "norm2")
    _mlp(r, ls2, r.p + ls2_name)


def _qkv(r):
    a = r.arch
    if a.qkv == "split":
        parts = [r.get(f"attn.{n}_proj.weight") for n in "qkv"]
        weight = np.concatenate(parts, axis=0)
        r.put("attn.qkv.weight", weight, f"{r.p}attn.{{q,k,v}}_proj.weight")
        biases = [r.maybe(f"attn.{n}_proj.bias") for n in "qkv"]
        if any(b is not None for b in biases):
            bias = np.concatenate([b if b is not None else np.zeros(p.shape[0], np.float32)
                                   for b, p in zip(biases, parts)])
            r.put("attn.qkv.bias", bias, f"{r.p}attn.{{q,k,v}}_proj.bias (zeros where absent)")
        return
    weight = r.get("attn.qkv.weight")
    r.put("attn.qkv.weight", weight, r.p + "attn.qkv.weight")
    if a.qkv == "qv_bias":
        q, v = r.get("attn.q_bias"), r.get("attn.v_bias")
        r.put("attn.qkv.bias", np.concatenate([q, np.zeros_like(q), v]), f"{r.p}attn.q_bias, zeros, {r.p}attn.v_bias")
    elif r.has("attn.qkv.bias"):
        r.put("attn.qkv.bias", r.get("attn.qkv.bias"), r.p + "attn.qkv.bias")


def _mlp(r, ls2, ls2_name):
    a = r.arch
    if a.mlp == "glu_split":
        gate, value = r.get("mlp.fc1_g.weight"), r.get("mlp.fc1_x.weight")
        gate_b, value_b = r.maybe("mlp.fc1_g.bias"), r.maybe("mlp.fc1_x.bias")
        r.put("mlp.fc1.weight", np.concatenate([gate, value]), f"{r.p}mlp.fc1_g.weight + fc1_x.weight")
        zeros = np.zeros(gate.shape[0], np.float32)
        r.put("mlp.fc1.bias", np.concatenate([zeros if gate_b is None else gate_b, zeros if value_b is None else value_b]),
              f"{r.p}mlp.fc1_g.bias + fc1_x.bias (zeros where absent)")
    else:
        r.linear("mlp.fc1", "mlp.fc1")
        if a.mlp == "glu_packed" and a.gate_last:
            # timm GluMlp(gate_last=True): fc1's second half is the gate; the file wants it first.
            for part in ("weight", "bias"):
                value, gate = np.split(r.out[r.p + "mlp.fc1." + part], 2, axis=0)
                r.out[r.p + "mlp.fc1." + part] = np.ascontiguousarray(np.concatenate([gate, value]))
    if "mlp_norm" in a.features:
        r.norm("mlp.norm", "mlp.norm")
    r.linear("mlp.fc2", "mlp.fc2", scale=ls2, scale_name=ls2_name)


def _parallel_scaling(r):
    a = r.arch
    ls = r.gamma("ls.gamma")
    r.norm("norm1", "in_norm")
    in_proj = r.get("in_proj.weight")
    dim = in_proj.shape[1]
    mlp = in_proj.shape[0] - 3 * dim
    bias = r.maybe("in_proj.bias")
    r.put("mlp.fc1.weight", in_proj[:mlp], r.p + "in_proj.weight rows [0, M)")
    r.put("attn.qkv.weight", in_proj[mlp:], r.p + "in_proj.weight rows [M, M + 3D)")
    if bias is not None:
        r.put("mlp.fc1.bias", bias[:mlp], r.p + "in_proj.bias[:M]")
        r.put("attn.qkv.bias", bias[mlp:], r.p + "in_proj.bias[M:]")
    else:
        r.put("mlp.fc1.bias", r.get("mlp_bias"), r.p + "mlp_bias")
    if "qk_norm" in a.features:
        r.norm("attn.q_norm", "q_norm")
        r.norm("attn.k_norm", "k_norm")
    if r.has("out_proj.weight"):
        # One projection over [attention | mlp]: its columns split, its bias kept once (on proj).
        weight, b = r.weight_bias("out_proj")
        scale = np.ones(weight.shape[0]) if ls is None else ls
        r.put("attn.proj.weight", weight[:, :dim] * scale[:, None], r.p + "out_proj.weight[:, :D]")
        r.put("attn.proj.bias", b * scale, r.p + "out_proj.bias")
        r.put("mlp.fc2.weight", weight[:, dim:] * scale[:, None], r.p + "out_proj.weight[:, D:]")
        r.put("mlp.fc2.bias", np.zeros(weight.shape[0]), "zeros (out_proj's bias is on attn.proj)")
    else:
        r.linear("attn.proj", "attn_out_proj", scale=ls, scale_name=r.p + "ls.gamma")
        r.linear("mlp.fc2", "mlp_out_proj", scale=ls, scale_name=r.p + "ls.gamma")


def _parallel_things(r):
    a = r.arch
    if r.arch.features:
        raise ConvertError(f"parallel blocks (ParallelThingsBlock) with {', '.join(a.features)} cannot be folded")
    branches = 0
    while r.has(f"attns.{branches}.norm.weight"):
        branches += 1
    if branches < 1 or not r.has(f"ffns.{branches - 1}.norm.weight"):
        raise ConvertError(f"{r.p}: expected attns.N / ffns.N branches of a ParallelThingsBlock")
    q, k, v, qkv_bias, proj_w, proj_b, fc1_w, fc1_b, fc2_w, fc2_b = ([] for _ in range(10))
    for j in range(branches):
        weight, bias = _normed_input(r, f"attns.{j}.norm", f"attns.{j}.attn.qkv")
        for part, chunk in zip((q, k, v), np.split(weight, 3)):
            part.append(chunk)
        qkv_bias.append(np.split(bias, 3))
        weight, bias = _scaled_output(r, f"attns.{j}.attn.proj", f"attns.{j}.ls.gamma")
        proj_w.append(weight)
        proj_b.append(bias)
        weight, bias = _normed_input(r, f"ffns.{j}.norm", f"ffns.{j}.mlp.fc1")
        fc1_w.append(weight)
        fc1_b.append(bias)
        weight, bias = _scaled_output(r, f"ffns.{j}.mlp.fc2", f"ffns.{j}.ls.gamma")
        fc2_w.append(weight)
        fc2_b.append(bias)
    dim = proj_w[0].shape[0]
    origin = f"{r.p}attns.*/ffns.* folded ({branches} branches)"
    for norm in ("norm1", "norm2"):
        r.put(norm + ".weight", np.ones(dim), "ones: " + origin)
        r.put(norm + ".bias", np.zeros(dim), "zeros: " + origin)
    r.put("attn.qkv.weight", np.concatenate(q + k + v), origin)
    r.put("attn.qkv.bias", np.concatenate([np.concatenate([b[i] for b in qkv_bias]) for i in range(3)]), origin)
    r.put("attn.proj.weight", np.concatenate(proj_w, axis=1), origin)
    r.put("attn.proj.bias", np.sum(proj_b, axis=0), origin)
    r.put("mlp.fc1.weight", np.concatenate(fc1_w), origin)
    r.put("mlp.fc1.bias", np.concatenate(fc1_b), origin)
    r.put("mlp.fc2.weight", np.concatenate(fc2_w, axis=1), origin)
    r.put("mlp.fc2.bias", np.sum(fc2_b, axis=0), origin)


def _normed_input(r, norm, layer):
    """`layer` reading LayerNorm `norm`'s output, as a layer reading the bare normalisation:
    W·(n·w + b) + c = (W·diag(w))·n + (W·b + c)."""
    if r.arch.norm != "layernorm":
        raise ConvertError(f"{r.p}{norm}: only LayerNorm branches of a ParallelThingsBlock can be folded")
    w, b = r.get(norm + ".weight").astype(np.float64), r.get(norm + ".bias").astype(np.float64)
    weight, bias = r.weight_bias(layer)
    return weight * w[None, :], bias + weight @ b


def _scaled_output(r, layer, gamma):
    """`layer` followed by LayerScale `gamma` (if any), folded."""
    weight, bias = r.weight_bias(layer)
    ls = r.gamma(gamma)
    return (weight, bias) if ls is None else (weight * ls[:, None], bias * ls)
