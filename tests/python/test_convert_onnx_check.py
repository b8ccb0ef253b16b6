"""onnx_source.check: the proof that the model read from an ONNX graph is the graph's. It runs each
stage of the model (embedding, every block, tail) on the graph's own input to that stage. The model
as read passes; a model read wrongly in any one way must be refused: LayerNorm eps, GELU form,
attention scale, head count, the q/k/v or patch layout, a transposed weight, one token's position,
the last block, the classifier; and a refusal leaves no file behind.

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_convert*.py'
"""

import contextlib
import dataclasses
import io
import os
import sys
import tempfile
import unittest
from unittest import mock

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_convert as tc  # noqa: E402  (the converter on sys.path)
from onevit_convert import onnx_source  # noqa: E402
from onevit_convert.assemble import assemble  # noqa: E402
from onevit_convert.errors import ConvertError  # noqa: E402

try:
    import onnx  # noqa: F401
except ImportError:
    onnx = None

FIXTURES = os.path.join(tc.ROOT, "tests", "fixtures")


def read(*parts):
    """(model, check) as convert.py gets them for a fixture graph."""
    mapped, spec, check = onnx_source.read(os.path.join(FIXTURES, *parts, "model.onnx"), None)
    return assemble(mapped, spec), check


def altered(model, arch=None, **tensors):
    """The model with some architecture fields replaced and some tensors changed by functions."""
    new = [(name, tensors[name.replace(".", "_")](a) if name.replace(".", "_") in tensors else a)
           for name, a in model.tensors]
    return dataclasses.replace(model, arch=dataclasses.replace(model.arch, **(arch or {})), tensors=new)


def swap_q_k(a):
    """The first two thirds of a packed q/k/v tensor exchanged."""
    third = a.shape[0] // 3
    return np.concatenate([a[third:2 * third], a[:third], a[2 * third:]])


@unittest.skipIf(onnx is None, "the onnx package (python3-onnx) is not installed")
class OnnxCheck(unittest.TestCase):
    def refused(self, check, model, what):
        with self.assertRaises(ConvertError, msg=what) as caught:
            check(model)
        self.assertIn("not converted", str(caught.exception))

    def test_fixture_graphs_pass_as_read(self):
        for parts in (("onnx", "timm_opset14"), ("onnx", "torchvision_opset14"), ("onnx", "hf_dinov2_registers"),
                      ("onnx", "hf_clip_projection"), ("optimum", "siglip_vision")):
            with self.subTest(fixture="/".join(parts)):
                model, check = read(*parts)
                check(model)

    def test_each_wrong_reading_is_refused(self):
        model, check = read("onnx", "timm_opset14")
        a = model.arch
        self.assertEqual((a.gelu, a.heads, a.norm_eps), ("erf", 2, 1e-6))
        last = a.depth - 1
        cases = {
            "eps 1e-6 read as 1e-3": altered(model, {"norm_eps": 1e-3}),
            "exact GELU read as tanh": altered(model, {"gelu": "tanh"}),
            "exact GELU read as QuickGELU": altered(model, {"gelu": "quick"}),
            "attention scale 1/sqrt(dim)": altered(model, {"attn_scale": a.dim ** -0.5}),
            "one head": altered(model, {"heads": 1, "head_dim": a.head_dim * 2}),
            "four heads": altered(model, {"heads": 4, "head_dim": a.head_dim // 2}),
            "q and k swapped": altered(model, blocks_0_attn_qkv_weight=swap_q_k, blocks_0_attn_qkv_bias=swap_q_k),
            "patch kernel transposed": altered(model, patch_embed_weight=lambda w: w.transpose(0, 1, 3, 2).copy()),
            "attention projection transposed": altered(model, blocks_0_attn_proj_weight=lambda w: w.T.copy()),
            "last token's position": altered(model, pos_embed=lambda p: np.concatenate([p[:-1], p[-1:] + 0.01])),
            f"block {last}'s MLP bias": altered(model, **{f"blocks_{last}_mlp_fc2_bias": lambda b: b + 0.01}),
            "classifier bias": altered(model, head_bias=lambda b: b + 0.01),
        }
        for what, wrong in cases.items():
            with self.subTest(what):
                self.refused(check, wrong, what)

    def test_torchvision_packed_attention_read_wrongly_is_refused(self):
        model, check = read("onnx", "torchvision_opset14")
        self.refused(check, altered(model, blocks_0_attn_qkv_weight=swap_q_k, blocks_0_attn_qkv_bias=swap_q_k),
                     "q and k swapped")
        self.refused(check, altered(model, {"heads": model.arch.heads * 2, "head_dim": model.arch.head_dim // 2}),
                     "twice the heads")

    def test_a_refused_check_leaves_no_file(self):
        # A refused check: one line, and no file (not even a temporary one).
        with tempfile.TemporaryDirectory(prefix="onevit_onnx_check_") as tmp:
            out, err = os.path.join(tmp, "m.ovit"), io.StringIO()
            source = os.path.join(FIXTURES, "onnx", "timm_opset14", "model.onnx")
            # A bound below zero: the first stage is refused.
            with mock.patch.object(onnx_source, "TOLERANCE", -1.0), contextlib.redirect_stderr(err):
                self.assertEqual(tc.convert_cli.main([source, "-o", out]), 1)
            self.assertEqual(os.listdir(tmp), [])
            self.assertEqual(len(err.getvalue().splitlines()), 1, err.getvalue())
            self.assertIn("not converted", err.getvalue())
            with contextlib.redirect_stderr(io.StringIO()):
                self.assertEqual(tc.convert_cli.main([source, "-o", out]), 0)
            self.assertEqual(os.listdir(tmp), ["m.ovit"])


if __name__ == "__main__":
    unittest.main()
