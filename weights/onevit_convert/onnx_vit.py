"""An ONNX graph → the canonical ViT, matched by structure, never by names (exporters rename
weights: onnx::MatMul_1234).

The graph is evaluated once on a random image (onnx_graph.py); then, following the residual
stream from the image:

  patches   a Conv with kernel = stride on the image, its output laid out as tokens
            [1, G, D] (checked on an index array);
  embedding Concat/Add/Slice/Gather/Expand with constants only, between the patch tokens and
            the stream: replayed with the patches at zero and at distinct values, giving the
            prefix tokens (class, distillation, registers) and the position embedding;
  blocks    x → norm → attention → x + ·, x → norm → Linear → activation → Linear → x + ·:
            norm: LayerNormalization, or its decomposition ReduceMean, Sub, Pow (or Mul), ReduceMean,
            Add ε, Sqrt, Div (or Reciprocal, Mul), [Mul γ], [Add β];
            attention: the one Softmax between, its scores a MatMul of q and kᵀ (scalar factors
            collected as the scale), q, k and v traced back through layout ops to MatMul/Gemm
            projections of the normed x (one packed or three), the head split read by replaying
            those layout ops on index arrays; its output laid out back to [N, H·Dh] into the
            output projection;
            activation: the elementwise ops between the two Linears, evaluated on a probe and
            named exact GELU, tanh GELU or QuickGELU;
            a constant vector multiplied or added after a Linear (a bias, LayerScale) is folded;
  tail      [norm] then token 0 (Gather / Slice), a mean over the tokens (ReduceMean), both
            concatenated (Dinov2ForImageClassification), or an attention pooling (SigLIP's head: a
            constant query attending over the tokens, its projection, v + MLP(LayerNorm(v))), then
            [norm], a Linear [+ Tanh] and a Linear: with a bias the last is the classifier,
            without (CLIP's projection) or before a Tanh (a pooler) it makes the embedding.

The first node that does not fit is named in the error. Once matched, each stage of the canonical
model (canonical_forward.py) must give the graph's own values on the same image (onnx_source.py).
"""

import math

import numpy as np

from .errors import ConvertError
from .mapped import MappedCheckpoint
from .onnx_graph import Graph

FAMILY = "onnx"
LAYOUT_OPS = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Cast", "Dropout"}
SELECT_OPS = {"Gather", "Slice", "Split"}
EMBED_OPS = LAYOUT_OPS | SELECT_OPS | {"Concat", "Add", "Expand", "Tile"}
ELEMENTWISE = {"Mul", "Add", "Sub", "Div", "Erf", "Tanh", "Pow", "Sigmoid", "Gelu", "Identity", "Cast", "Sqrt"}
_GELUS = {
    "erf": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    "tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
    "quick": lambda x: x / (1 + np.exp(-1.702 * x)),
}


class _Match:
    """What the walk collects: canonical tensors (float32, [out, in] linear weights) and facts."""

    def __init__(self, g):
        self.g = g
        self.t, self.origin = {}, {}
        self.facts = {"eps": set(), "gelu": set(), "heads": set(), "scale": set()}
        self.notes = []

    def put(self, name, value, node):
        self.t[name] = np.asarray(value, dtype=np.float32)  # a transposed weight stays a view (Graph.transposed)
        self.origin[name] = str(node) if node is not None else "the graph's constants"

    def fail(self, node, expected):
        where = str(node) if node is not None else "the graph"
        raise ConvertError(f"{self.g.path}: not a ViT onevit runs: {where} is not {expected}")


def read(path, classes=None, rng_seed=0):
    """(MappedCheckpoint, facts): the canonical tensors of the ViT in an ONNX file, and what the
    spec needs: heads, eps, gelu, attn_scale, image size, channels."""
    g = Graph(path)
    # A table of sines and cosines computed at run time is a rotary position embedding (DINOv3's RoPE).
    rope = next((n for n in g.nodes if n.op in ("Sin", "Cos")), None)
    if rope is not None:
        raise ConvertError(f"{path}: not a ViT onevit reads from ONNX: {rope} computes a position table at run time, "
                           f"a rotary position embedding (RoPE, as DINOv3's); convert the model's transformers or "
                           f"timm checkpoint instead")
    shape = g.input_shape()
    if len(shape) != 4:
        raise ConvertError(f"{path}: the graph's input {g.inputs[0].name} has shape {shape}; a ViT reads an image "
                           f"[N, C, H, W]")
    channels = shape[1] if isinstance(shape[1], int) else 3
    height, width = _image_size(g, shape, channels)
    image = np.random.default_rng(rng_seed).standard_normal((1, channels, height, width)).astype(np.float32)
    g.evaluate(image)
    m = _Match(g)
    x, grid = _patches(m, g.inputs[0].name)
    x, prefix = _embedding(m, x, grid)
    depth = 0
    x = _norm_pre(m, x)
    stream = [x]  # the tokens entering each block, then leaving the last: the check's stages
    while True:
        nxt = _block(m, x, depth)
        if nxt is None:
            break
        x, depth = nxt, depth + 1
        stream.append(x)
    if depth == 0:
        m.fail(_first_user(g, x), "the first block's norm and attention")
    tail = _tail(m, x, prefix, classes)
    for key in ("eps", "gelu", "heads", "scale"):
        if len(m.facts[key]) > 1:
            raise ConvertError(f"{path}: the blocks differ in {key} ({sorted(m.facts[key])}); a model file has one")
    mapped = MappedCheckpoint(FAMILY, m.t, m.origin, depth, class_token=tail["class_token"], pool=tail["pool"],
                              pool_proj_act=tail["pool_proj_act"], embedding=tail["embedding"], notes=m.notes)
    facts = {"heads": m.facts["heads"].pop(), "eps": m.facts["eps"].pop() if m.facts["eps"] else 1e-6,
             "gelu": m.facts["gelu"].pop(), "attn_scale": m.facts["scale"].pop(), "image": (height, width),
             "channels": channels, "graph": g, "input": image, "stream": stream, "outputs": tail["outputs"]}
    return mapped, facts


def _image_size(g, shape, channels):
    """The input size: the declared one, else (dynamic dims) the square grid of the position embedding."""
    if isinstance(shape[2], int) and isinstance(shape[3], int):
        return shape[2], shape[3]
    conv = next((n for n in g.nodes if n.op == "Conv"), None)
    weight = g.values.get(conv.inputs[1]) if conv is not None else None
    if weight is None or weight.ndim != 4:
        raise ConvertError(f"{g.path}: the input's height and width are dynamic and no patch-embedding Conv with a "
                           f"constant kernel follows it")
    width_d, patch = weight.shape[0], weight.shape[2]
    # A position embedding: a [1, L, D] (else [L, D]) constant no MatMul, Gemm or Conv multiplies by,
    # whose rows are a few prefix tokens and a square grid.
    weights = {n.inputs[1] for n in g.nodes if n.op in ("MatMul", "Gemm", "Conv") and len(n.inputs) > 1}
    shaped = [(v.ndim == 3, v.shape[-2]) for k, v in g.values.items() if k not in weights and v.ndim in (2, 3) and
              v.shape[-1] == width_d and (v.ndim == 2 or v.shape[0] == 1)]
    for _, rows in sorted(shaped, reverse=True):
        for prefix in (1, 0, 2, 5):
            side = math.isqrt(max(rows - prefix, 0))
            if side >= 2 and side * side == rows - prefix:
                return side * patch, side * patch
    raise ConvertError(f"{g.path}: the input's height and width are dynamic and no constant looks like a position "
                       f"embedding of a square patch grid; export the model at a fixed size")


def _layout_chain(g, t):
    """The layout ops following t, each the only reader of the one before: (nodes, last output)."""
    chain = []
    while True:
        users = g.users(t)
        if len(users) != 1 or users[0].op not in LAYOUT_OPS:
            return chain, t
        chain.append(users[0])
        t = users[0].outputs[0]


def _first_user(g, tensor):
    users = g.users(tensor)
    return users[0] if users else None


def _only_user(m, tensor, expected):
    users = m.g.users(tensor)
    if len(users) != 1:
        m.fail(users[0] if users else None, f"the only reader of {tensor} ({expected})")
    return users[0]


def _token_index(shape, tokens, width):
    """An index array of `shape` (tokens, channels last, every other axis 1) holding
    token·width + channel; None for another shape."""
    dims = list(shape)
    if not dims or dims[-1] != width or math.prod(dims) != tokens * width or tokens not in dims[:-1]:
        return None
    return np.arange(tokens * width, dtype=np.int64).reshape(dims)


def _is_tokens(value, tokens, width):
    """Whether an index array is the tokens × channels order (size-1 axes aside)."""
    v = np.asarray(value)
    return v.size == tokens * width and np.array_equal(v.reshape(tokens, width),
                                                        np.arange(tokens * width).reshape(tokens, width)) and \
        [d for d in v.shape if d != 1][-1:] == [width]


# ---------------------------------------------------------------------------------- patches

def _patches(m, image):
    g = m.g
    conv = _only_user(m, image, "the patch embedding")
    while conv.op in ("Identity", "Cast"):
        conv = _only_user(m, conv.outputs[0], "the patch embedding")
    weight = g.const(conv.inputs[1]) if conv.op == "Conv" and len(conv.inputs) > 1 else None
    if conv.op != "Conv" or weight is None or weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
        m.fail(conv, "a patch-embedding Conv with a constant square kernel")
    bias = g.const(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else np.zeros(weight.shape[0])
    d = weight.shape[0]
    m.put("patch_embed.weight", weight, conv)
    m.put("patch_embed.bias", bias, conv)
    _, _, gh, gw = g.values[conv.outputs[0]].shape
    tokens = gh * gw
    chain, t = _layout_chain(g, conv.outputs[0])
    index = (np.arange(d)[:, None] + np.arange(tokens)[None, :] * d).reshape(1, d, gh, gw)
    if not chain or not _is_tokens(g.run_chain(chain, conv.outputs[0], index), tokens, d):
        m.fail(chain[-1] if chain else _first_user(g, t), "a layout of the patch grid as tokens [N, grid, D]")
    return t, tokens


# ---------------------------------------------------------------------------------- embedding

def _embedding(m, patches, grid):
    """The constant-only ops from the patch tokens to the stream: prefix tokens and positions."""
    g = m.g
    stage, inside = [], {patches}
    for n in g.nodes:
        data = g.data_inputs(n)
        if n.op in EMBED_OPS and data and all(t in inside for t in data) and \
                not (n.op == "Add" and len(data) > 1):
            stage.append(n)
            inside.update(t for t in n.outputs if t)
    frontier = {t for n in stage for t in n.outputs if t and any(u not in stage for u in g.users(t))}
    if not stage:
        frontier = {patches}
    if len(frontier) != 1:
        m.fail(stage[-1] if stage else None, "a single sequence of tokens after the class token and position "
                                              "embedding")
    stream = frontier.pop()
    d = m.t["patch_embed.weight"].shape[0]
    # In float64, where a mark plus a position value minus that value is the mark again, exactly.
    zero = np.zeros(g.values[patches].shape, np.float64)
    base = g.run_chain(stage, patches, zero) if stage else zero
    marks = (np.arange(grid * d, dtype=np.float64) + 1).reshape(g.values[patches].shape)
    moved = (g.run_chain(stage, patches, marks) if stage else marks) - base
    if base.ndim != 3 or base.shape[0] != 1 or base.shape[2] != d:
        m.fail(g.producer.get(stream), "the token sequence [1, tokens, D]")
    rows = base.shape[1]
    prefix = rows - grid
    expected = np.concatenate([np.zeros((prefix, d)), marks.reshape(grid, d)])
    if prefix < 0 or not np.array_equal(moved[0], expected):
        m.fail(g.producer.get(stream), "the prefix tokens followed by the patch tokens in order")
    if prefix:
        m.put("prefix_tokens", base[0, :prefix], g.producer.get(stream))
    # A prefix token's position row is added into the token itself: the sum is all that matters.
    m.put("pos_embed", np.concatenate([np.zeros((prefix, d), np.float32), base[0, prefix:]]), g.producer.get(stream))
    return stream, prefix


# ---------------------------------------------------------------------------------- norms

def _norm(m, x):
    """(output, weight, bias, eps) of a LayerNorm over the last axis of x, or None."""
    g = m.g
    d = g.values[x].shape[-1]
    users = g.users(x)
    for n in users:
        if n.op == "LayerNormalization" and n.inputs[0] == x:
            axis = n.attr("axis", -1)
            if axis % g.values[x].ndim != g.values[x].ndim - 1:
                m.fail(n, "a LayerNorm over the last axis")
            scale = g.const(n.inputs[1])
            bias = g.const(n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else np.zeros(d, np.float32)
            if scale is None or bias is None:
                m.fail(n, "a LayerNorm with constant scale and bias")
            return n.outputs[0], np.broadcast_to(scale, (d,)), np.broadcast_to(bias, (d,)), float(n.attr("epsilon", 1e-5))
    mean = next((n for n in users if n.op == "ReduceMean" and _last_axis(m, n, x)), None)
    if mean is None:
        return None
    sub = next((n for n in users if n.op == "Sub" and n.inputs == [x, mean.outputs[0]]), None)
    if sub is None:
        m.fail(mean, "the mean of a LayerNorm, subtracted from its input")
    centred = sub.outputs[0]
    square = next((n for n in g.users(centred) if (n.op == "Pow" and _scalar(g, n.inputs[1]) == 2.0) or
                   (n.op == "Mul" and n.inputs == [centred, centred])), None)
    if square is None:
        m.fail(_first_user(g, centred), "the square of x − mean")
    var = _only_user(m, square.outputs[0], "the variance")
    if var.op != "ReduceMean" or not _last_axis(m, var, square.outputs[0]):
        m.fail(var, "the variance: a ReduceMean over the last axis")
    add = _only_user(m, var.outputs[0], "var + ε")
    eps = _scalar(g, add.inputs[1]) if add.op == "Add" else None
    if eps is None:
        eps = _scalar(g, add.inputs[0]) if add.op == "Add" else None
    if eps is None or eps < 0:
        m.fail(add, "var + ε with a constant ε")
    root = _only_user(m, add.outputs[0], "√(var + ε)")
    if root.op != "Sqrt":
        m.fail(root, "√(var + ε)")
    div = next((n for n in g.users(centred) if n.op == "Div" and n.inputs == [centred, root.outputs[0]]), None)
    if div is None:
        rec = _only_user(m, root.outputs[0], "1 / √(var + ε)")
        div = next((n for n in g.users(centred) if n.op == "Mul" and set(n.inputs) == {centred, rec.outputs[0]}),
                   None) if rec.op == "Reciprocal" else None
    if div is None:
        m.fail(_first_user(g, root.outputs[0]), "(x − mean) / √(var + ε)")
    out, w, b = div.outputs[0], np.ones(d, np.float32), np.zeros(d, np.float32)
    users = g.users(out)
    if len(users) == 1 and users[0].op == "Mul" and _vector(g, users[0], out, d) is not None:
        w = _vector(g, users[0], out, d)
        out = users[0].outputs[0]
        users = g.users(out)
    if len(users) == 1 and users[0].op == "Add" and _vector(g, users[0], out, d) is not None:
        b = _vector(g, users[0], out, d)
        out = users[0].outputs[0]
    return out, w, b, eps


def _put_norm(m, name, found):
    """The canonical tensors of a matched norm; its output."""
    out, w, b, eps = found
    m.put(name + ".weight", w, m.g.producer[out])
    m.put(name + ".bias", b, m.g.producer[out])
    m.facts["eps"].add(round(eps, 12))
    return out


def _last_axis(m, node, x):
    axes = node.attr("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        axes = m.g.const(node.inputs[1])
    ndim = m.g.values[x].ndim
    return axes is not None and [int(a) % ndim for a in np.asarray(axes).reshape(-1)] == [ndim - 1] and \
        node.attr("keepdims", 1) == 1


def _scalar(g, tensor):
    value = g.const(tensor)
    return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None


def _vector(g, node, data, width):
    """The constant operand of node (Mul/Add with `data`) as a [width] vector, if it broadcasts so."""
    other = [t for t in node.inputs if t != data]
    value = g.const(other[0]) if len(other) == 1 else None
    if value is None or value.size not in (1, width) or (value.size == width and value.shape[-1] != width):
        return None
    return np.broadcast_to(value.reshape(-1), (width,)).astype(np.float32)


def _norm_pre(m, x):
    """A norm on the stream before the first block (CLIP): the stream's only reader is a norm
    whose output the first block reads."""
    g = m.g
    if any(n.op == "Add" and len(g.data_inputs(n)) == 2 for n in g.users(x)):
        return x
    found = _norm(m, x)
    if found is None:
        return x
    return _put_norm(m, "norm_pre", found)


# ---------------------------------------------------------------------------------- blocks

def _residual(m, x):
    """The Add of x and one other data tensor: (node, that tensor), or None."""
    g = m.g
    for n in g.users(x):
        data = g.data_inputs(n)
        if n.op == "Add" and len(data) == 2 and x in data:
            return n, data[0] if data[1] == x else data[1]
    return None


def _block(m, x, i):
    g = m.g
    residual = _residual(m, x)
    if residual is None:
        return None
    norm = _norm(m, x)
    if norm is None:
        m.fail(next((n for n in g.users(x) if n is not residual[0]), None), f"block {i}'s first LayerNorm")
    b = f"blocks.{i}."
    _attention(m, _put_norm(m, b + "norm1", norm), residual[1], b)
    x1 = residual[0].outputs[0]
    residual = _residual(m, x1)
    norm = _norm(m, x1)
    if residual is None or norm is None:
        m.fail(_first_user(g, x1), f"block {i}'s second LayerNorm and MLP residual")
    _mlp(m, _put_norm(m, b + "norm2", norm), residual[1], b)
    return residual[0].outputs[0]


def _linear_from(m, t):
    """The Linear reading t: (weight [out, in], bias [out], output, node) with every constant vector
    added or multiplied after it folded in; None if t's reader is not a Linear."""
    g = m.g
    users = g.users(t)
    if len(users) != 1:
        return None
    n = users[0]
    if n.op == "MatMul" and n.inputs[0] == t and g.const(n.inputs[1]) is not None and g.const(n.inputs[1]).ndim == 2:
        w = g.transposed(n.inputs[1])
        b = np.zeros(w.shape[0], np.float32)
    elif n.op == "Gemm" and n.inputs[0] == t and g.const(n.inputs[1]) is not None and not n.attr("transA", 0):
        w = g.const(n.inputs[1]) if n.attr("transB", 0) else g.transposed(n.inputs[1])
        w = _times(w, n.attr("alpha", 1.0))
        c = g.const(n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
        b = np.broadcast_to(c * n.attr("beta", 1.0), (w.shape[0],)) if c is not None else np.zeros(w.shape[0])
    else:
        return None
    # w is float32 [out, in]; a folded scale widens it to float64, copied back once at the end.
    b = np.asarray(b, np.float64)
    out, bias_seen = n.outputs[0], n.op == "Gemm" and len(n.inputs) > 2 and bool(n.inputs[2])
    out, w, b, folded = _fold_affine(m, out, w, b)
    return np.asarray(w, np.float32), b.astype(np.float32), out, n, bias_seen or folded


def _times(w, factor):
    """w scaled by a Gemm's alpha: itself when alpha is 1, not a copy."""
    return w if factor == 1 else w * factor


def _fold_affine(m, out, w, b):
    """Constant vectors added to or multiplying a Linear's output, folded into it:
    (x Wᵀ + b)·γ + β = x (γW)ᵀ + (γ b + β)."""
    g = m.g
    added = False
    while True:
        users = g.users(out)
        if len(users) != 1 or users[0].op not in ("Add", "Mul") or len(g.data_inputs(users[0])) != 1:
            return out, w, b, added
        vector = _vector(g, users[0], out, w.shape[0])
        if vector is None:
            return out, w, b, added
        if users[0].op == "Add":
            b, added = b + vector, True
        else:
            w, b = np.multiply(w, vector[:, None], dtype=np.float64), b * vector
        out = users[0].outputs[0]


def _back_to_projection(m, t):
    """From an attention operand back to the Linear producing it: (nodes forward, projection
    output, factor of the scalar multiplies met, the Linear's node)."""
    g = m.g
    chain, factor = [], 1.0
    while True:
        n = g.producer.get(t)
        if n is None:
            m.fail(None, f"an attention operand traced back to a projection ({t})")
        if n.op in ("MatMul", "Gemm") and any(g.const(i) is not None for i in n.inputs[1:2]):
            return list(reversed(chain)), t, factor, n
        if n.op == "Add" and len(g.data_inputs(n)) == 1 and g.producer.get(g.data_inputs(n)[0]) is not None and \
                g.producer[g.data_inputs(n)[0]].op in ("MatMul", "Gemm"):
            return list(reversed(chain)), t, factor, g.producer[g.data_inputs(n)[0]]
        if n.op in ("Mul", "Div") and len(g.data_inputs(n)) == 1:
            other = [i for i in n.inputs if i != g.data_inputs(n)[0]]
            s = _scalar(g, other[0]) if other else None
            if s is None or s == 0:
                m.fail(n, "a multiplication of q or k by a constant scalar")
            factor = factor * s if n.op == "Mul" else factor / s
            chain.append(n)
            t = g.data_inputs(n)[0]
            continue
        if n.op in LAYOUT_OPS | SELECT_OPS and len(g.data_inputs(n)) == 1:
            chain.append(n)
            t = g.data_inputs(n)[0]
            continue
        m.fail(n, "a layout op between a q/k/v projection and the attention")


def _projection_input(m, linear, h, tokens, d):
    """The Linear's input must be h laid out (tokens × channels): checked on an index array."""
    g = m.g
    u = linear.inputs[0]
    chain, t = [], u
    while t != h:
        n = g.producer.get(t)
        if n is None or n.op not in LAYOUT_OPS or len(g.data_inputs(n)) != 1:
            m.fail(linear, "a q/k/v projection of the block's normed input")
        chain.append(n)
        t = g.data_inputs(n)[0]
    chain.reverse()
    index = _token_index(g.values[h].shape, tokens, d)
    if chain and (index is None or not _is_tokens(g.run_chain(chain, h, index), tokens, d)):
        m.fail(chain[-1], "a layout of the normed tokens")


def _heads_of(m, node, value, tokens, columns, transposed):
    """(heads, head_dim, offset) of an index array holding n·columns + offset + h·Dh + d, in
    (H, N, Dh) order, or (H, Dh, N) if transposed (kᵀ)."""
    v = np.asarray(value)
    dims = [s for s in v.shape if s != 1]
    if len(dims) == 2:
        dims = [1] + dims
    if len(dims) != 3:
        m.fail(node, "an attention operand of heads × tokens × head width")
    v = v.reshape(dims)
    if transposed:
        v = v.transpose(0, 2, 1)
    heads, n, head_dim = v.shape
    if n != tokens:
        m.fail(node, f"an attention operand over the {tokens} tokens")
    offset = int(v[0, 0, 0])
    expected = (np.arange(tokens)[None, :, None] * columns + offset + np.arange(heads)[:, None, None] * head_dim +
                np.arange(head_dim)[None, None, :])
    if not np.array_equal(v, expected):
        m.fail(node, "q, k or v split head-major from its projection ([N, H, Dh] rows)")
    return heads, head_dim, offset


def _attention(m, h, out, b):
    g = m.g
    tokens, d = g.values[h].shape[-2], g.values[h].shape[-1]
    softmax = _between(m, h, out, "Softmax")
    qk, factor = _scores(m, softmax)
    if len(g.data_inputs(qk)) != 2:
        m.fail(qk, "the attention scores: a MatMul of q and kᵀ")
    pv = _probabilities_times_v(m, softmax)
    found = {role: _operand(m, operand, h, tokens, d, role == "k")
             for role, operand in (("q", qk.inputs[0]), ("k", qk.inputs[1]), ("v", pv.inputs[1]))}
    factor *= math.prod(f[5] for f in found.values())
    heads, head_dim = _same_heads(m, qk, found.values())
    m.put(b + "attn.qkv.weight", _rows(m, [found[r] for r in "qkv"], heads * head_dim), found["q"][0])
    m.put(b + "attn.qkv.bias", np.concatenate([_projection_weights(m, *found[r][:2])[1][found[r][4]:][:heads * head_dim]
                                               for r in "qkv"]), found["q"][0])
    m.facts["heads"].add(heads)
    m.facts["scale"].add(float(np.float32(factor)))
    w, bias, node = _attention_output(m, pv, tokens, heads, head_dim)
    _, w, bias = _tokens_back(m, node[1], out, tokens, w, bias)
    m.put(b + "attn.proj.weight", w, node[0])
    m.put(b + "attn.proj.bias", bias, node[0])


def _scores(m, softmax):
    """(the MatMul of q and kᵀ, the scalar factor between it and the softmax)."""
    g = m.g
    if softmax.attr("axis", -1) % g.values[softmax.inputs[0]].ndim != g.values[softmax.inputs[0]].ndim - 1:
        m.fail(softmax, "a softmax over the keys (the last axis)")
    scores, factor = softmax.inputs[0], 1.0
    while g.producer[scores].op in ("Mul", "Div", "Cast", "Identity", "Add"):
        n = g.producer[scores]
        if n.op == "Add":
            # An attention bias of zeros (the dynamo exporter's scaled_dot_product_attention) is none;
            # any other (relative positions) the engine does not have.
            other = [i for i in n.inputs if i not in g.data_inputs(n)]
            bias = g.const(other[0]) if len(other) == 1 and len(g.data_inputs(n)) == 1 else None
            if bias is None or np.any(bias):
                m.fail(n, "the attention scores without an added bias (a relative position bias is not run)")
        elif n.op in ("Mul", "Div"):
            other = [i for i in n.inputs if i != g.data_inputs(n)[0]] if len(g.data_inputs(n)) == 1 else []
            s = _scalar(g, other[0]) if other else None
            if s is None:
                m.fail(n, "a scaling of the attention scores by a constant")
            factor = factor * s if n.op == "Mul" else factor / s
        scores = g.data_inputs(n)[0]
    qk = g.producer[scores]
    if qk.op != "MatMul":
        m.fail(qk, "the attention scores: a MatMul of q and kᵀ")
    return qk, factor


def _probabilities_times_v(m, softmax):
    probs = _nan_guard(m, softmax.outputs[0])
    pv = _only_user(m, probs, "the attention probabilities times v")
    while pv.op in ("Cast", "Identity", "Dropout"):
        probs = pv.outputs[0]
        pv = _only_user(m, probs, "the attention probabilities times v")
    if pv.op != "MatMul" or pv.inputs[0] != probs:
        m.fail(pv, "the attention probabilities times v")
    return pv


def _operand(m, operand, h, tokens, d, transposed):
    """q, k or v traced back to its projection of h: (Linear node, its output, heads, head_dim,
    the operand's first column in the projection's output, the scalar factor on the way)."""
    g = m.g
    chain, proj_out, factor, linear = _back_to_projection(m, operand)
    _projection_input(m, linear, h, tokens, d)
    columns = g.values[proj_out].shape[-1]
    index = _token_index(g.values[proj_out].shape, tokens, columns)
    if index is None:
        m.fail(linear, "a projection over the tokens")
    value = g.run_chain(chain, proj_out, index) if chain else index
    heads, head_dim, offset = _heads_of(m, chain[-1] if chain else linear, value, tokens, columns, transposed)
    return linear, proj_out, heads, head_dim, offset, factor


def _same_heads(m, node, found):
    heads, head_dim = {f[2] for f in found}, {f[3] for f in found}
    if len(heads) != 1 or len(head_dim) != 1:
        m.fail(node, "q, k and v of the same heads")
    return heads.pop(), head_dim.pop()


def _rows(m, found, inner):
    """The operands' rows of their projections' weights, stacked [len(found)·inner, d]: a view when
    they are one packed weight's rows in order (nn.MultiheadAttention's in_proj), else a copy."""
    if all(f[0] is found[0][0] and f[4] == i * inner for i, f in enumerate(found)):
        return _projection_weights(m, found[0][0], found[0][1])[0][:len(found) * inner]
    return np.concatenate([_projection_weights(m, linear, proj_out)[0][offset:offset + inner]
                           for linear, proj_out, _, _, offset, _ in found])


def _nan_guard(m, probs):
    """Where(IsNaN(p), 0, p) after the softmax (the dynamo exporter's guard) passes p on."""
    g = m.g
    users = g.users(probs)
    isnan = next((n for n in users if n.op == "IsNaN"), None)
    where = next((n for n in users if n.op == "Where"), None)
    if isnan is None and where is None:
        return probs
    zero = g.const(where.inputs[1]) if where is not None else None
    if isnan is None or where is None or len(users) != 2 or where.inputs[0] != isnan.outputs[0] or \
            where.inputs[2] != probs or zero is None or np.any(zero):
        m.fail(isnan or where, "a guard replacing NaN attention probabilities by zeros")
    return where.outputs[0]


def _projection_weights(m, linear, proj_out):
    """weight [out, in] and bias of a q/k/v projection (its bias, if added after it)."""
    g = m.g
    if linear.op == "Gemm":
        w = g.const(linear.inputs[1]) if linear.attr("transB", 0) else g.transposed(linear.inputs[1])
        c = g.const(linear.inputs[2]) if len(linear.inputs) > 2 and linear.inputs[2] else None
        bias = np.broadcast_to(c, (w.shape[0],)) if c is not None else np.zeros(w.shape[0], np.float32)
        w = _times(w, linear.attr("alpha", 1.0))
    else:
        w = g.transposed(linear.inputs[1])
        bias = np.zeros(w.shape[0], np.float32)
        if proj_out != linear.outputs[0]:
            add = g.producer[proj_out]
            vector = _vector(g, add, linear.outputs[0], w.shape[0])
            if vector is None:
                m.fail(add, "the bias of a q/k/v projection")
            bias = vector
    return np.asarray(w, np.float32), np.asarray(bias, np.float32)


def _between(m, start, end, op):
    """The one node of type `op` on the data paths from start to end."""
    g = m.g
    ahead = set()
    frontier = [start]
    while frontier:
        t = frontier.pop()
        for n in g.users(t):
            if n.index not in ahead:
                ahead.add(n.index)
                frontier += [o for o in n.outputs if o and o != end]
    behind, frontier = set(), [end]
    while frontier:
        t = frontier.pop()
        n = g.producer.get(t)
        if n is not None and n.index not in behind and t != start:
            behind.add(n.index)
            frontier += g.data_inputs(n)
    found = [g.nodes[i] for i in sorted(ahead & behind) if g.nodes[i].op == op]
    if len(found) != 1:
        m.fail(g.producer.get(end), f"an attention with exactly one {op} (found {len(found)})")
    return found[0]


def _attention_output(m, pv, tokens, heads, head_dim):
    """From the attention's output (heads × tokens × head width) through layout ops to the output
    projection: (weight, bias, (node, output))."""
    g = m.g
    inner = heads * head_dim
    chain, t = _layout_chain(g, pv.outputs[0])
    shape = g.values[pv.outputs[0]].shape
    index = (np.arange(heads)[:, None, None] * head_dim + np.arange(tokens)[None, :, None] * inner +
             np.arange(head_dim)[None, None, :])
    if math.prod(shape) != index.size:
        m.fail(pv, "the attention output, heads × tokens × head width")
    value = g.run_chain(chain, pv.outputs[0], index.reshape(shape)) if chain else index.reshape(shape)
    if not _is_tokens(value, tokens, inner):
        m.fail(chain[-1] if chain else pv, "the heads concatenated per token ([N, H·Dh]) before the output projection")
    linear = _linear_from(m, t)
    if linear is None:
        m.fail(_first_user(g, t), "the attention's output projection")
    w, bias, proj_out, node, _ = linear
    return w, bias, (node, proj_out)


def _tokens_back(m, t, end, tokens, w, bias):
    """From a Linear's output through layout ops (and folded constant vectors) to `end`."""
    g = m.g
    chain = []
    while t != end:
        users = g.users(t)
        if len(users) != 1:
            m.fail(users[0] if users else None, f"a path from a Linear to the residual add ({end})")
        n = users[0]
        if n.op in LAYOUT_OPS:
            chain.append(n)
            t = n.outputs[0]
        elif n.op in ("Add", "Mul") and len(g.data_inputs(n)) == 1 and _vector(g, n, t, w.shape[0]) is not None:
            vector = _vector(g, n, t, w.shape[0])
            if n.op == "Add":
                bias = bias + vector
            else:
                w, bias = w * vector[:, None], bias * vector
            if chain:
                m.fail(n, "a constant vector applied right after a Linear")
            t = n.outputs[0]
        else:
            m.fail(n, f"a layout op between a Linear and the residual add ({end})")
    if chain:
        start = chain[0].inputs[0]
        index = _token_index(g.values[start].shape, tokens, w.shape[0])
        if index is None or not _is_tokens(g.run_chain(chain, start, index), tokens, w.shape[0]):
            m.fail(chain[-1], "the tokens laid out as they were")
    return t, w, bias


def _mlp(m, h, out, b):
    g = m.g
    tokens = g.values[h].shape[-2]
    fc1 = _linear_from(m, h)
    if fc1 is None:
        m.fail(_first_user(g, h), "the MLP's first Linear")
    w1, b1, u, n1, _ = fc1
    # The activation: the elementwise ops reading u and each other, in graph order, until the
    # node that reads them and is none (the second Linear), which must read their last output.
    region, frontier, stop = [], {u}, None
    first = min((n.index for n in g.users(u)), default=len(g.nodes))
    for n in g.nodes[first:]:
        data = g.data_inputs(n)
        if n.op in ("Shape", "Size") or not any(x in frontier for x in data):
            continue
        if n.op in ELEMENTWISE and all(x in frontier for x in data):
            region.append(n)
            frontier.update(o for o in n.outputs if o)
            continue
        stop = n
        break
    if not region or stop is None or stop.inputs[0] != region[-1].outputs[0]:
        m.fail(stop if region else _first_user(g, u), "the MLP's activation (GELU) between its two Linears")
    t = region[-1].outputs[0]
    probe = np.linspace(-6, 6, 1201, dtype=np.float32).reshape(1, 1, -1)
    values = _evaluate(g, region, u, probe)
    kind = next((k for k, f in _GELUS.items()
                 if np.abs(values.reshape(-1) - f(probe.reshape(-1).astype(np.float64))).max() < 2e-5), None)
    if kind is None:
        m.fail(region[-1], "a GELU (exact, tanh or Quick) between the MLP's Linears")
    m.facts["gelu"].add(kind)
    fc2 = _linear_from(m, t)
    if fc2 is None:
        m.fail(_first_user(g, t), "the MLP's second Linear")
    w2, b2, o, n2, _ = fc2
    _, w2, b2 = _tokens_back(m, o, out, tokens, w2, b2)
    # A block's blocks.N.mlp.fc1, the attention pooling's attn_pool.fc1 (FORMAT.md's names).
    fc = b if b == "attn_pool." else b + "mlp."
    m.put(fc + "fc1.weight", w1, n1)
    m.put(fc + "fc1.bias", b1, n1)
    m.put(fc + "fc2.weight", w2, n2)
    m.put(fc + "fc2.bias", b2, n2)


def _evaluate(g, nodes, start, value):
    """Replays nodes with `start` = value, with their constants (scalars included)."""
    from .onnx_graph import evaluate_node
    env = {start: value}
    for n in nodes:
        args = [env.get(t, g.values.get(t)) if t else None for t in n.inputs]
        for t, v in zip(n.outputs, evaluate_node(n, args, g.opset)):
            env[t] = v
    return env[nodes[-1].outputs[0]]


# ---------------------------------------------------------------------------------- tail

def _tail(m, x, prefix, classes):
    """Final norm, pooling, and the layers on the pooled vector; which graph outputs are what."""
    g = m.g
    outputs = {}
    d = g.values[x].shape[-1]
    tokens = g.values[x].shape[-2]
    norm = _norm(m, x)
    if norm is not None:
        x = _put_norm(m, "norm", norm)
    if x in g.outputs:
        outputs[x] = "tokens"
    pooled, pool, pool_node = _pool(m, x, tokens, d, prefix)
    if pooled is None:
        pooled, pool = _attention_pool(m, x, tokens, d, prefix), "map"
    if pooled is None:
        if not outputs or prefix == 0:
            m.fail(_first_user(g, x), "the pooling of the tokens (token 0 or their mean)")
        # Only the tokens leave the graph: the embedding is the class token.
        return {"pool": "token", "class_token": True, "pool_proj_act": "none", "outputs": outputs,
                "embedding": "the normed class token (the graph outputs only the tokens)"}
    v, layers = pooled, []
    while True:
        norm = _norm(m, v) if not layers else None
        if norm is not None and "head_norm.weight" not in m.t:
            v = _put_norm(m, "head_norm", norm)
            continue
        linear = _linear_from(m, v)
        if linear is None:
            break
        w, b, v, node, has_bias = linear
        tanh = g.users(v)[0] if len(g.users(v)) == 1 and g.users(v)[0].op == "Tanh" else None
        if tanh is not None:
            v = tanh.outputs[0]
        layers.append((w, b, node, has_bias, tanh is not None, v))
    if len(layers) > 2:
        m.fail(layers[2][2], "at most a projection and a classifier after the pooling")
    head, proj = None, None
    if len(layers) == 2:
        proj, head = layers
    elif len(layers) == 1:
        # A Linear with a bias and no tanh is a classifier, as is one as wide as the labels given;
        # without a bias (CLIP's projection) or with a tanh (a pooler) it makes the embedding.
        only = layers[0]
        if not only[4] and (only[3] or only[0].shape[0] == classes):
            head = only
        else:
            proj = only
            if not only[4]:
                m.notes.append(f"the last Linear ({only[2]}) has no bias: read as a projection making the "
                               f"embedding; give --labels (one per output) to read it as a classifier")
    if head is not None and head[4]:
        m.fail(head[2], "a classifier (a Linear without an activation after it)")
    if proj is not None:
        m.put("pool_proj.weight", proj[0], proj[2])
        m.put("pool_proj.bias", proj[1], proj[2])
    if head is not None:
        m.put("head.weight", head[0], head[2])
        m.put("head.bias", head[1], head[2])
    final = layers[-1][5] if layers else v
    if final not in g.outputs:
        m.fail(_first_user(g, final), "the graph's output (logits or embedding)")
    outputs[final] = "logits" if head is not None else "embedding"
    if proj is not None and head is not None and proj[5] in g.outputs:
        outputs[proj[5]] = "embedding"
    for o in g.outputs:
        if o not in outputs:
            m.fail(g.producer.get(o), f"an output onevit gives (tokens, embedding or logits): {o}")
    what = {"token": "token 0", "mean": "the mean of all tokens", "mean_patches": "the mean of the patch tokens",
            "map": "the attention pooling of the tokens",
            "token_and_mean_patches": "token 0 and the mean of the patch tokens, concatenated"}[pool]
    embedding = f"the graph's pooled vector ({what}" + (", projected" if proj is not None else "") + \
        (" + tanh" if proj is not None and proj[4] else "") + ")"
    return {"pool": pool, "class_token": prefix > 0, "outputs": outputs,
            "pool_proj_act": "tanh" if proj is not None and proj[4] else "none", "embedding": embedding}


def _pool(m, x, tokens, d, prefix):
    """(pooled tensor, arch.pool, node) for token 0 or a mean over the tokens read from x, or both
    concatenated (Dinov2ForImageClassification's token_and_mean_patches)."""
    g = m.g
    found = list(_pools(m, x, tokens, d, prefix))
    kinds = {kind: t for t, kind, _ in found}
    if "token" in kinds and "mean_patches" in kinds:
        for n in g.users(kinds["token"]):
            if n.op == "Concat" and n.inputs == [kinds["token"], kinds["mean_patches"]] and \
                    n.attr("axis") % g.values[n.outputs[0]].ndim == g.values[n.outputs[0]].ndim - 1:
                return n.outputs[0], "token_and_mean_patches", n
    return found[0] if found else (None, None, None)


def _pools(m, x, tokens, d, prefix):
    """Each (pooled tensor, arch.pool, node) of token 0 or a mean over the tokens read from x."""
    g = m.g
    for n in g.users(x):
        chain, t = [], x
        node = n
        while node is not None and node.op in LAYOUT_OPS | SELECT_OPS:
            chain.append(node)
            t = node.outputs[0]
            users = g.users(t)
            node = users[0] if len(users) == 1 else None
        index = _token_index(g.values[x].shape, tokens, d)
        if node is not None and node.op == "ReduceMean":
            kept = g.run_chain(chain, x, index) if chain else index
            kept = np.asarray(kept)
            axes = node.attr("axes")
            if axes is None and len(node.inputs) > 1 and node.inputs[1]:
                axes = g.const(node.inputs[1])
            rows = kept.reshape(-1, d)
            if rows.shape[0] * d != kept.size or not np.array_equal(rows % d, np.broadcast_to(np.arange(d), rows.shape)):
                continue
            picked = (rows[:, 0] // d).tolist()
            out = node.outputs[0]
            value = g.values[out]
            if value.size != d:
                m.fail(node, "a mean over the tokens giving one vector per image")
            out = _squeeze_to_vector(m, out, d)
            if picked == list(range(tokens)):
                yield out, "mean", node
            elif picked == list(range(prefix, tokens)):
                yield out, "mean_patches", node
            else:
                m.fail(node, "a mean over all tokens or over the patch tokens")
            continue
        if chain:
            value = np.asarray(g.run_chain(chain, x, index))
            if value.size == d and np.array_equal(value.reshape(-1), np.arange(d)):
                yield t, "token", chain[-1]


def _attention_pool(m, x, tokens, d, prefix):
    """SigLIP's attention-pooling head (timm's 'map'): a learned query (a constant) attending over
    the tokens, its output projection, then v + MLP(LayerNorm(v)); its output vector, or None
    when no attention follows the tokens."""
    g = m.g
    after = g.producer[x].index if x in g.producer else 0
    softmax = next((n for n in g.nodes[after:] if n.op == "Softmax"), None)
    if softmax is None:
        return None
    qk, factor = _scores(m, softmax)
    query = g.const(qk.inputs[0])
    if query is None or len(g.data_inputs(qk)) != 1:
        m.fail(qk, "an attention pooling's scores: a learned query (a constant) times kᵀ")
    if prefix:
        m.fail(qk, "an attention pooling over tokens without class or register tokens (SigLIP's)")
    pv = _probabilities_times_v(m, softmax)
    found = [_operand(m, operand, x, tokens, d, role == "k") for role, operand in (("k", qk.inputs[1]),
                                                                                     ("v", pv.inputs[1]))]
    heads, head_dim = _same_heads(m, qk, found)
    if {heads} != m.facts["heads"] or query.size != heads * head_dim:
        m.fail(qk, f"an attention pooling with the blocks' {sorted(m.facts['heads'])} heads and one query")
    # The engine scales the query's scores by the blocks' scale: the query absorbs the difference.
    factor *= math.prod(f[5] for f in found)
    m.put("attn_pool.query", query.reshape(-1).astype(np.float64) * factor / m.facts["scale"].copy().pop(), qk)
    m.put("attn_pool.kv.weight", _rows(m, found, heads * head_dim), found[0][0])
    m.put("attn_pool.kv.bias", np.concatenate([_projection_weights(m, *f[:2])[1][f[4]:][:heads * head_dim]
                                               for f in found]), found[0][0])
    w, bias, (node, t) = _attention_output(m, pv, 1, heads, head_dim)
    end = t
    while len(g.users(end)) == 1 and g.users(end)[0].op in LAYOUT_OPS:
        end = g.users(end)[0].outputs[0]
    _, w, bias = _tokens_back(m, t, end, 1, w, bias)
    m.put("attn_pool.proj.weight", w, node)
    m.put("attn_pool.proj.bias", bias, node)
    norm, residual = _norm(m, end), _residual(m, end)
    if norm is None or residual is None:
        m.fail(_first_user(g, end), "the attention pooling's LayerNorm and MLP, added to its output")
    _mlp(m, _put_norm(m, "attn_pool.norm", norm), residual[1], "attn_pool.")
    if m.t["attn_pool.fc1.weight"].shape[0] != m.t["blocks.0.mlp.fc1.weight"].shape[0]:
        m.fail(residual[0], "an attention pooling MLP as wide as the blocks'")
    out = residual[0].outputs[0]
    while len(g.users(out)) == 1 and g.users(out)[0].op in LAYOUT_OPS | SELECT_OPS and \
            g.values[g.users(out)[0].outputs[0]].size == d:
        out = g.users(out)[0].outputs[0]
    return out


def _squeeze_to_vector(m, t, d):
    g = m.g
    while True:
        users = g.users(t)
        if len(users) == 1 and users[0].op in LAYOUT_OPS and g.values[users[0].outputs[0]].size == d:
            t = users[0].outputs[0]
            continue
        return t
