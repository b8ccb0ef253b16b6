"""weights/onevit_convert/torch_zip.py: torch.save's zip archives read without importing torch give
exactly what torch.load gives, and what it does not know (legacy pickles, any other global) is left
to torch (None) without running anything.

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_convert*.py'
"""

import argparse
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_convert as tc  # noqa: E402  (ConvertTestCase, the converter on sys.path)
from onevit_convert import torch_zip  # noqa: E402


class _OpensFile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class TorchZip(tc.ConvertTestCase):
    def state(self):
        """Tensors torch stores as views of shared or larger storages, and every dtype a state dict holds."""
        import torch
        g = torch.Generator().manual_seed(3)
        base = torch.randn(6, 10, generator=g)
        return {"transposed": base.t(), "sliced": base[1:4, 2:9:3], "whole": base,
                "column": base[:, 7], "scalar": torch.tensor(2.5), "steps": torch.arange(5),
                "bf16": torch.randn(3, 4, generator=g).to(torch.bfloat16),
                "f16": torch.randn(4, generator=g).to(torch.float16), "f64": torch.randn(2, 2, generator=g).double(),
                "mask": torch.tensor([True, False]), "empty": torch.zeros(0, 3),
                "param": torch.nn.Parameter(torch.randn(2, 3, generator=g))}

    def test_reads_what_torch_reads(self):
        import torch
        state = self.state()
        path = self.path("m.pth")
        torch.save({"model": state, "epoch": 7}, path)
        got = torch_zip.load(path)
        self.assertIsNotNone(got, "a plain state dict was left to torch")
        self.assertEqual(got["epoch"], 7)
        want = torch.load(path, weights_only=True)["model"]
        self.assertEqual(sorted(got["model"]), sorted(want))
        for name, tensor in want.items():
            with self.subTest(tensor=name):
                if tensor.dtype in (torch.bfloat16, torch.float16):
                    tensor = tensor.float()
                expected = tensor.detach().numpy()
                array = got["model"][name]
                self.assertEqual((array.dtype, array.shape), (expected.dtype, expected.shape))
                np.testing.assert_array_equal(array, expected)
                self.assertTrue(array.flags.writeable and array.flags.c_contiguous)

    def test_leaves_the_rest_to_torch(self):
        import torch
        legacy = self.path("legacy.pth")
        torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
        self.assertIsNone(torch_zip.load(legacy))  # not a zip archive
        other = self.path("namespace.pth")
        torch.save({"w": torch.zeros(2), "args": argparse.Namespace(lr=0.1)}, other)
        self.assertIsNone(torch_zip.load(other))
        marker = self.path("pwned")
        payload = self.path("payload.pth")
        torch.save({"w": torch.zeros(2), "b": _OpensFile(marker)}, payload)
        self.assertIsNone(torch_zip.load(payload))
        self.assertFalse(os.path.exists(marker), "torch_zip ran a checkpoint's code")
        # A damaged pickle (its CRC no longer matches): torch names the damage.
        damaged = self.path("damaged.pth")
        torch.save({"w": torch.zeros(2)}, damaged)
        with open(damaged, "r+b") as f:
            data = f.read()
            f.seek(data.index(b"collections") + 2)
            f.write(b"X")
        self.assertIsNone(torch_zip.load(damaged))
        self.convert_fails(damaged, "--heads", "1", contains=(damaged,))


if __name__ == "__main__":
    unittest.main()
