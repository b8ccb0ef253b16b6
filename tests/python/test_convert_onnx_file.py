"""weights/onevit_convert/onnx_file.py: ONNX initializers read in place from the file's bytes must
be exactly what the onnx package itself reads (onnx.load + numpy_helper.to_array), for every
fixture graph, for tensors stored in typed fields or external data, and damaged files must be
refused in one line (convert.py's ConvertError).

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_convert*.py'
"""

import glob
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_convert as tc  # noqa: E402  (the converter on sys.path)
from onevit_convert import onnx_file  # noqa: E402
from onevit_convert.errors import ConvertError  # noqa: E402

onnx = None
try:
    import onnx
    from onnx import helper, numpy_helper
except ImportError:
    pass

FIXTURES = os.path.join(tc.ROOT, "tests", "fixtures")


def onnx_own(path):
    """{name: array} as the onnx package reads the initializers."""
    model = onnx.load(path, load_external_data=True)
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


@unittest.skipIf(onnx is None, "the onnx package (python3-onnx) is not installed")
class OnnxFile(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="onevit_onnx_file_")
        self.addCleanup(self.tmp.cleanup)

    def ours(self, path):
        """{name: array} of onnx_file.read: those read in place and those left to onnx."""
        model, arrays = onnx_file.read(path)
        left = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.assertFalse(set(left) & set(arrays))
        return model, {**arrays, **left}, arrays

    def assert_same(self, path):
        model, got, _ = self.ours(path)
        want = onnx_own(path)
        self.assertEqual(sorted(got), sorted(want), path)
        for name, value in want.items():
            self.assertEqual(got[name].dtype, value.dtype, name)
            self.assertEqual(got[name].shape, value.shape, name)
            np.testing.assert_array_equal(got[name], value, err_msg=f"{path}: {name}")
        full = onnx.load(path, load_external_data=False)
        self.assertEqual([n.SerializeToString() for n in model.graph.node],
                         [n.SerializeToString() for n in full.graph.node], path)
        self.assertEqual(model.graph.input, full.graph.input)
        self.assertEqual(model.graph.output, full.graph.output)
        self.assertEqual(model.opset_import, full.opset_import)

    def test_every_fixture_graph_reads_as_onnx_reads_it(self):
        paths = sorted(glob.glob(os.path.join(FIXTURES, "*", "*", "*.onnx")))
        self.assertGreaterEqual(len(paths), 10)
        for path in paths:
            with self.subTest(path=os.path.relpath(path, FIXTURES)):
                self.assert_same(path)

    def test_weights_are_views_of_raw_data_and_the_rest_is_left_to_onnx(self):
        weight = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
        ints = np.array([[1, -2], [3, 4]], np.int64)
        typed = helper.make_tensor("typed", onnx.TensorProto.FLOAT, [2], [1.5, -2.5])  # float_data, not raw
        half = numpy_helper.from_array(np.array([0.5, -1, 65504], np.float16), "half")
        scalar = numpy_helper.from_array(np.array(3.25, np.float64), "scalar")
        empty = numpy_helper.from_array(np.zeros((0, 4), np.float32), "empty")
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
                                  [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
                                  [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(ints, "ints"),
                                   typed, half, scalar, empty])
        path = os.path.join(self.tmp.name, "small.onnx")
        onnx.save(helper.make_model(graph), path)
        self.assert_same(path)
        _, _, in_place = self.ours(path)
        self.assertEqual(sorted(in_place), ["empty", "half", "ints", "scalar", "w"])

    def test_external_data_is_read_by_onnx(self):
        path = os.path.join(FIXTURES, "onnx", "timm_tanh_external", "model.onnx")
        _, got, in_place = self.ours(path)
        self.assertEqual(in_place, {})  # every tensor lies in model.onnx.data
        self.assert_same(path)

    def test_damaged_files_are_refused_in_one_line(self):
        source = os.path.join(FIXTURES, "onnx", "timm_opset14", "model.onnx")
        with open(source, "rb") as f:
            data = f.read()
        for name, damaged in (("truncated", data[:len(data) // 2]), ("no protobuf", b"\xff" * 64),
                              ("a length past the end", b"\x3a\xff\xff\xff\x0f" + data[:100])):
            path = os.path.join(self.tmp.name, "damaged.onnx")
            with open(path, "wb") as f:
                f.write(damaged)
            with self.subTest(name), self.assertRaises(ConvertError) as caught:
                onnx_file.read(path)
                self.fail("read")
            self.assertIn("damaged.onnx", str(caught.exception))
            self.assertNotIn("\n", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
