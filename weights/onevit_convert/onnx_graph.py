"""An ONNX model as the ViT matcher (onnx_vit.py) reads it: its nodes with their producers and
consumers, and every tensor's value on one input image, computed here with numpy (only the
shape, for an intermediate the check does not read).

Evaluating the whole graph once (batch 1) gives what the structure alone leaves implicit: the
shapes a dynamic export computes at run time (Reshape targets from Shape, Gather, Concat), the
constants it folds only then (a transposed weight, a gathered position embedding), and each
tensor's dependence on the image (a Shape's output depends on the input's shape only). The
matcher replays short chains of layout ops on index arrays with `run_chain`, and the check
compares the ViT it read with the graph's own values between its blocks and at its outputs.

Read with the `onnx` package (Debian's python3-onnx), the weights in place (onnx_file.py),
external data from the model's folder.
"""

import math

import numpy as np

from . import onnx_file
from .errors import ConvertError

_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
           10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


def _erf(x):
    """erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26), numpy having none; in x's precision
    (float32: 5e-7 in all, against the check's 1e-4), float64 taking twice as long."""
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    a = np.abs(x).astype(dtype, copy=False)
    c = [dtype.type(v) for v in (0.3275911, 0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)]
    t = 1 / (1 + c[0] * a)
    poly = t * (c[1] + t * (c[2] + t * (c[3] + t * (c[4] + t * c[5]))))
    return np.copysign(1 - poly * np.exp(-a * a), x).astype(x.dtype, copy=False)


class Dropped:
    """A value the evaluation let go: its shape and type only, so that any use of its numbers fails."""

    def __init__(self, value):
        self.shape, self.ndim, self.size, self.dtype = value.shape, value.ndim, value.size, value.dtype


def _attr(node, name, default=None):
    from onnx import helper
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


class Node:
    """One node: its op, name, inputs/outputs (tensor names; '' for an absent optional input)."""

    def __init__(self, proto, index):
        self.proto, self.index = proto, index
        self.op, self.domain = proto.op_type, proto.domain
        self.name = proto.name or f"#{index}"
        self.inputs, self.outputs = list(proto.input), list(proto.output)

    def attr(self, name, default=None):
        return _attr(self.proto, name, default)

    def __str__(self):
        return f"{self.op} node '{self.name}'"


class Graph:
    def __init__(self, path):
        from onnx import numpy_helper
        self.path = path
        model, arrays = onnx_file.read(path)
        self.opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
        g = model.graph
        self.values = dict(arrays)
        for t in g.initializer:
            try:
                self.values[t.name] = numpy_helper.to_array(t)
            except Exception as e:  # a damaged tensor: data of another size than its shape's
                raise ConvertError(f"{path}: its initializer {t.name} cannot be read ({type(e).__name__}: "
                                   f"{str(e)[:150]})") from None
        self.depends = dict.fromkeys(self.values, False)
        self.inputs = [i for i in g.input if i.name not in self.values]
        self.outputs = [o.name for o in g.output]
        self.nodes = [Node(n, i) for i, n in enumerate(g.node)]
        self.producer, self.consumers = {}, {}
        for n in self.nodes:
            if n.domain not in ("", "ai.onnx"):
                raise ConvertError(f"{path}: {n} is of the custom domain {n.domain!r}, which a ViT exported from "
                                   f"PyTorch does not have")
            for t in n.outputs:
                self.producer[t] = n
            for t in n.inputs:
                if t:
                    self.consumers.setdefault(t, []).append(n)

    def transposed(self, tensor):
        """A constant [in, out] weight as [out, in] float32: ONNX stores a Linear's weight transposed
        from PyTorch's (and FORMAT.md's) order. A view, of the file's bytes where they are float32:
        the writer lays it out a few rows at a time, which a copy of every weight made here would
        cost again, in fresh memory."""
        return self.const(tensor).astype(np.float32, copy=False).T

    def input_shape(self):
        """The image input's [N, C, H, W] as declared: ints, or names for dynamic dims."""
        if len(self.inputs) != 1:
            raise ConvertError(f"{self.path}: the graph has {len(self.inputs)} inputs "
                               f"({', '.join(i.name for i in self.inputs)}); a ViT has one, the image")
        dims = self.inputs[0].type.tensor_type.shape.dim
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]

    def evaluate(self, image):
        """Every tensor's value for `image` [1, C, H, W] float32 (and whether it depends on it).
        An image-dependent value is let go once its last reader has run, its shape kept (Dropped),
        unless it is an output or has the width of the patch tokens: the check reads only those.
        The rest (MLP hidden units, attention maps) would each be fresh memory, which the system
        supplies slowly; let go, it is reused."""
        name = self.inputs[0].name
        self.values[name], self.depends[name] = image, True
        last_reader = {t: n.index for n in self.nodes for t in n.inputs if t}
        width = None
        for n in self.nodes:
            args = [self.values.get(t) if t else None for t in n.inputs]
            missing = [t for t, a in zip(n.inputs, args) if t and a is None]
            if missing:
                raise ConvertError(f"{self.path}: {n} reads {missing[0]}, which nothing before it writes")
            try:
                results = evaluate_node(n, args, self.opset)
            except ConvertError as e:
                raise ConvertError(f"{self.path}: not a ViT onevit runs: {e}") from None
            except Exception as e:  # numpy's errors on inconsistent shapes, an op's wrong arity
                raise ConvertError(f"{self.path}: {n} cannot be evaluated ({type(e).__name__}: {str(e)[:150]})") \
                    from None
            depends = n.op not in ("Shape", "Size") and any(self.depends.get(t, False) for t in n.inputs if t)
            for t, v in zip(n.outputs, results):
                if t:
                    self.values[t], self.depends[t] = v, depends
            if n.op == "Conv" and width is None:
                width = results[0].shape[1]
            for t in n.inputs:
                v = self.values.get(t)
                if last_reader.get(t) == n.index and self.depends.get(t) and t not in self.outputs and \
                        t != name and width is not None and isinstance(v, np.ndarray) and v.shape[-1:] != (width,):
                    self.values[t] = Dropped(v)

    # -- queries the matcher uses --------------------------------------------------------------

    def const(self, tensor):
        """The value of a tensor that does not depend on the image, else None."""
        return None if not tensor or self.depends.get(tensor, True) else self.values.get(tensor)

    def users(self, tensor):
        """The nodes reading `tensor` for its values (not those reading only its shape)."""
        return [n for n in self.consumers.get(tensor, []) if n.op not in ("Shape", "Size")]

    def data_inputs(self, node):
        return [t for t in node.inputs if t and self.depends.get(t, False)]

    def run_chain(self, nodes, start, value):
        """Replays `nodes` (in order) with `start` set to `value`, every other input as evaluated;
        returns the values of the last node's outputs. Used on index arrays, so scalar factors
        (Mul/Div by a constant) are skipped: the caller collects them."""
        env = {start: value}
        for n in nodes:
            if n.op in ("Mul", "Div") and len(self.data_inputs(n)) == 1:
                data = self.data_inputs(n)[0]
                env[n.outputs[0]] = env[data]
                continue
            args = [env.get(t, self.values.get(t)) if t else None for t in n.inputs]
            for t, v in zip(n.outputs, evaluate_node(n, args, self.opset)):
                env[t] = v
        return env[nodes[-1].outputs[0]]


def _axes(node, args, opset, position=1):
    """The axes of Squeeze/Unsqueeze/Reduce*: an attribute before opset 13 (18 for Reduce*), an input after."""
    if len(args) > position and args[position] is not None:
        return [int(a) for a in np.asarray(args[position]).reshape(-1)]
    axes = node.attr("axes")
    return None if axes is None else [int(a) for a in axes]


def _conv(x, w, b, node):
    strides = node.attr("strides", [1, 1])
    pads = node.attr("pads", [0, 0, 0, 0])
    kernel = list(w.shape[2:])
    auto_pad = node.attr("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode("ascii", "replace") if isinstance(auto_pad, bytes) else str(auto_pad)
    # VALID is no padding, as NOTSET with zero pads; SAME_* pads the image to a multiple of the stride.
    if auto_pad not in ("NOTSET", "VALID"):
        raise ConvertError(f"{node} pads its input (auto_pad {auto_pad}); a patch embedding has no padding")
    if node.attr("group", 1) != 1 or any(d != 1 for d in node.attr("dilations", [1, 1])) or any(pads) or \
            list(strides) != kernel:
        raise ConvertError(f"{node} is a convolution other than a patch-embedding one (kernel = stride, no padding, "
                           f"one group)")
    n, c, h, wd = x.shape
    ph, pw = kernel
    gh, gw = h // ph, wd // pw
    patches = x[:, :, :gh * ph, :gw * pw].reshape(n, c, gh, ph, gw, pw).transpose(0, 2, 4, 1, 3, 5)
    out = patches.reshape(n * gh * gw, c * ph * pw) @ w.reshape(w.shape[0], -1).T
    if b is not None:
        out = out + b
    return out.reshape(n, gh, gw, -1).transpose(0, 3, 1, 2).astype(x.dtype)


def _matmul(x, w):
    """np.matmul, with numpy's slow paths avoided: a stack of rows times a matrix (the sequence-first
    [N, 1, D] of nn.MultiheadAttention) is one product of [N, D] rows, not N vector products each
    reading the whole weight; a strided operand (a head's view of q, k or v) is made contiguous, or
    numpy multiplies it without BLAS."""
    if w.ndim == 2 and x.ndim > 2:
        return np.matmul(x.reshape(-1, x.shape[-1]), w).reshape(x.shape[:-1] + (w.shape[1],))
    return np.matmul(np.ascontiguousarray(x), np.ascontiguousarray(w))


def _slice(args):
    data, starts, ends = args[0], args[1], args[2]
    axes = args[3] if len(args) > 3 and args[3] is not None else range(len(starts))
    steps = args[4] if len(args) > 4 and args[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(max(min(e, 2 ** 62), -2 ** 62)), int(st))
    return data[tuple(index)]


def _split(node, args, opset):
    data, axis = args[0], node.attr("axis", 0)
    sizes = args[1] if len(args) > 1 and args[1] is not None else node.attr("split")
    if sizes is None:
        parts = node.attr("num_outputs", len(node.outputs))
        size = -(-data.shape[axis] // parts)
        sizes = [min(size, data.shape[axis] - i * size) for i in range(parts)]
    bounds = np.cumsum([0] + [int(s) for s in sizes])
    return [np.take(data, range(bounds[i], bounds[i + 1]), axis=axis) for i in range(len(sizes))]


def _reshape(data, shape, allowzero):
    shape = [int(s) for s in shape]
    if not allowzero:
        shape = [data.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return data.reshape(shape)


def _resize(node, args):
    """Resize to the input's own size only (an interpolated position embedding at its native grid)."""
    data = args[0]
    sizes = args[3] if len(args) > 3 and args[3] is not None and np.asarray(args[3]).size else None
    scales = args[2] if len(args) > 2 and args[2] is not None and np.asarray(args[2]).size else None
    same = (sizes is not None and list(sizes) == list(data.shape)) or \
        (scales is not None and all(float(s) == 1.0 for s in scales))
    if not same:
        raise ConvertError(f"{node} resizes a tensor to another size; onevit's ONNX reader evaluates a Resize only "
                           f"at its input's size (convert at the model's own input size)")
    return data


def evaluate_node(n, a, opset):
    """The outputs of node `n` for input values `a` (numpy)."""
    op = n.op
    unary = {"Identity": lambda x: x, "Dropout": lambda x: x, "Sqrt": np.sqrt, "Reciprocal": np.reciprocal,
             "Neg": np.negative, "Abs": np.abs, "Exp": np.exp, "Log": np.log, "Erf": _erf, "Tanh": np.tanh,
             "Relu": lambda x: np.maximum(x, 0), "Sigmoid": lambda x: 1 / (1 + np.exp(-x)), "Not": np.logical_not,
             "Floor": np.floor, "Ceil": np.ceil, "IsNaN": np.isnan, "IsInf": np.isinf}
    if op in unary:
        return [unary[op](a[0])]
    if op == "Pow" and a[1].size == 1 and float(a[1].reshape(-1)[0]) == 2.0:
        return [a[0] * a[0]]  # a LayerNorm's square: np.power takes ten times as long
    binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Pow": np.power, "Equal": np.equal,
              "Less": np.less, "Greater": np.greater, "Max": np.maximum, "Min": np.minimum, "And": np.logical_and}
    if op in binary:
        out = a[0]
        for other in a[1:]:
            out = binary[op](out, other)
        return [out.astype(np.result_type(a[0], a[1]), copy=False) if op not in ("Equal", "Less", "Greater", "And") else out]
    if op == "Div":
        if np.issubdtype(a[0].dtype, np.integer):
            return [np.trunc(a[0] / a[1]).astype(a[0].dtype, copy=False)]
        return [(a[0] / a[1]).astype(a[0].dtype, copy=False)]
    if op == "Mod":
        return [np.fmod(a[0], a[1]) if n.attr("fmod", 0) else np.mod(a[0], a[1])]
    if op == "Constant":
        from onnx import numpy_helper
        for attr in n.proto.attribute:
            if attr.name == "value":
                return [numpy_helper.to_array(attr.t)]
            if attr.name in ("value_float", "value_int"):
                return [np.array(attr.f if attr.name == "value_float" else attr.i,
                                 np.float32 if attr.name == "value_float" else np.int64)]
            if attr.name in ("value_floats", "value_ints"):
                return [np.array(list(attr.floats) or list(attr.ints),
                                 np.float32 if attr.name == "value_floats" else np.int64)]
        raise ConvertError(f"{n} holds a constant of a kind onevit's ONNX reader does not read")
    if op == "ConstantOfShape":
        from onnx import numpy_helper
        value = n.attr("value")
        fill = numpy_helper.to_array(value) if value is not None else np.zeros(1, np.float32)
        return [np.full([int(s) for s in a[0]], fill.reshape(-1)[0], fill.dtype)]
    if op == "Shape":
        start, end = n.attr("start", 0), n.attr("end")
        return [np.array(a[0].shape[start:end], np.int64)]
    if op == "Size":
        return [np.array(a[0].size, np.int64)]
    if op == "Cast":
        return [a[0].astype(_DTYPES.get(n.attr("to"), np.float32), copy=False)]
    if op == "Reshape":
        return [_reshape(a[0], a[1], n.attr("allowzero", 0))]
    if op == "Flatten":
        axis = n.attr("axis", 1) % max(a[0].ndim, 1)
        return [a[0].reshape(int(np.prod(a[0].shape[:axis])), -1)]
    if op == "Transpose":
        perm = n.attr("perm")
        return [np.transpose(a[0], perm)]
    if op == "Squeeze":
        axes = _axes(n, a, opset)
        return [np.squeeze(a[0], axis=tuple(axes) if axes is not None else None)]
    if op == "Unsqueeze":
        out = a[0]
        axes = _axes(n, a, opset)
        for axis in sorted(x % (out.ndim + len(axes)) for x in axes):
            out = np.expand_dims(out, axis)
        return [out]
    if op == "Concat":
        return [np.concatenate([x for x in a if x is not None], axis=n.attr("axis"))]
    if op == "Gather":
        return [np.take(a[0], a[1].astype(np.int64), axis=n.attr("axis", 0))]
    if op == "Slice":
        return [_slice(a)]
    if op == "Split":
        return _split(n, a, opset)
    if op == "Expand":
        shape = np.broadcast_shapes(a[0].shape, tuple(int(s) for s in a[1]))
        return [np.broadcast_to(a[0], shape).copy()]
    if op == "Tile":
        return [np.tile(a[0], [int(r) for r in a[1]])]
    if op == "Range":
        return [np.arange(a[0], a[1], a[2]).astype(a[0].dtype)]
    if op == "Where":
        return [np.where(a[0], a[1], a[2])]
    if op == "MatMul":
        return [_matmul(a[0], a[1])]
    if op == "Gemm":
        x = a[0].T if n.attr("transA", 0) else a[0]
        w = a[1].T if n.attr("transB", 0) else a[1]
        out = n.attr("alpha", 1.0) * (x @ w)
        if len(a) > 2 and a[2] is not None:
            out = out + n.attr("beta", 1.0) * a[2]
        return [out.astype(a[0].dtype, copy=False)]
    if op == "Conv":
        return [_conv(a[0], a[1], a[2] if len(a) > 2 else None, n)]
    if op == "Softmax":
        axis = n.attr("axis", -1 if opset >= 13 else 1)
        if opset < 13 and axis != a[0].ndim - 1:
            raise ConvertError(f"{n}: a Softmax over flattened axes (opset < 13) is not read")
        e = np.exp(a[0] - a[0].max(axis=axis, keepdims=True))
        return [e / e.sum(axis=axis, keepdims=True)]
    if op in ("ReduceMean", "ReduceSum"):
        axes = _axes(n, a, opset)
        keep = bool(n.attr("keepdims", 1))
        f = np.mean if op == "ReduceMean" else np.sum
        return [f(a[0], axis=tuple(axes) if axes is not None else None, keepdims=keep).astype(a[0].dtype, copy=False)]
    if op == "LayerNormalization":
        axis = n.attr("axis", -1)
        axes = tuple(range(axis % a[0].ndim, a[0].ndim))
        mean = a[0].mean(axis=axes, keepdims=True)
        var = ((a[0] - mean) ** 2).mean(axis=axes, keepdims=True)
        out = (a[0] - mean) / np.sqrt(var + n.attr("epsilon", 1e-5)) * a[1]
        if len(a) > 2 and a[2] is not None:
            out = out + a[2]
        return [out.astype(a[0].dtype, copy=False)]
    if op == "Gelu":
        x = a[0]
        if n.attr("approximate", b"none") in (b"tanh", "tanh"):
            return [(0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))).astype(x.dtype, copy=False)]
        return [(0.5 * x * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype, copy=False)]
    if op == "Resize":
        return [_resize(n, a)]
    raise ConvertError(f"{n}: the op {op} is not one a ViT exported from PyTorch uses")
