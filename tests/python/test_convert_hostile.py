"""Hostile checkpoints for weights/convert.py: loading one never runs code from
it, and a damaged or lying checkpoint gives one `convert.py: error:` line that
names what is wrong — never a traceback, never an output file.

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_convert*.py'

What tests/python/test_convert.py already covers is not repeated here (a
__reduce__ payload in a raw-pickle .pth, NaN in timm safetensors, Inf in a
Google .npz, missing/unexpected timm keys, wrong timm shapes). Added here: the
payload in every container and suffix the converter accepts (zip and legacy
torch.save, raw pickles of protocol 0 and 2, sniffed suffixes, object arrays
in .npz/.npy, code run through exec), NaN/Inf/−Inf in the other families and
dtypes, degenerate shapes, and damaged safetensors headers.
"""

import json
import os
import pickle
import struct
import sys
import unittest
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_convert as tc  # noqa: E402  (its helpers: tiny canonical model, family layouts, writers)

ARCH = "vit_tiny_patch16_224"  # any valid name: checkpoints below fail before it matters


class _OpensFile:
    """Unpickling this calls open(marker, 'w'): the file appears if code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _Execs:
    """Unpickling this runs Python source through exec."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


class PicklePayloadsNeverRun(tc.ConvertTestCase):
    """Every way a payload can reach the loader; none may run."""

    def setUp(self):
        super().setUp()
        self.marker = self.path("pwned")

    def tearDown(self):
        self.assertFalse(os.path.exists(self.marker), "a checkpoint ran code while being loaded")
        super().tearDown()

    def refused(self, checkpoint, *contains):
        return self.convert_fails(checkpoint, "--arch", ARCH, contains=(checkpoint,) + contains)

    def payload_state(self, payload_class=_OpensFile):
        import torch
        return {"head.weight": torch.zeros(2, 2), "head.bias": payload_class(self.marker)}

    def test_zip_torch_save_with_every_suffix(self):
        import torch
        for suffix in (".pth", ".pt", ".bin", ".ckpt", ".weights", ""):
            with self.subTest(suffix=suffix):
                path = self.path("zip" + suffix)
                torch.save(self.payload_state(), path)
                self.assertTrue(zipfile.is_zipfile(path))
                self.refused(path, "refused")

    def test_payload_in_a_training_checkpoint_wrapper(self):
        import torch
        path = self.path("wrapped.pth")
        torch.save({"model": {"head.bias": torch.zeros(2)}, "optimizer": _OpensFile(self.marker)}, path)
        self.refused(path, "refused")

    def test_legacy_torch_save_format(self):
        import torch
        path = self.path("legacy.pth")
        torch.save(self.payload_state(), path, _use_new_zipfile_serialization=False)
        self.assertFalse(zipfile.is_zipfile(path))
        self.refused(path, "refused")

    def test_raw_pickles_of_old_and_new_protocols(self):
        for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
            for suffix in (".pth", ".weights"):
                with self.subTest(protocol=protocol, suffix=suffix):
                    path = self.path(f"raw{protocol}{suffix}")
                    with open(path, "wb") as f:
                        pickle.dump({"head.bias": _OpensFile(self.marker)}, f, protocol=protocol)
                    # Protocol 0 has no \x80 marker: an unknown suffix is then not
                    # even recognised as a pickle, which is refused as well.
                    self.refused(path)

    def test_exec_payload(self):
        import torch
        path = self.path("exec.pth")
        torch.save(self.payload_state(_Execs), path)
        self.refused(path, "refused")
        path = self.path("exec_raw.pt")
        with open(path, "wb") as f:
            pickle.dump([_Execs(self.marker)], f)
        self.refused(path, "refused")

    def test_object_array_in_npz(self):
        path = self.path("objects.npz")
        payload = np.empty(1, dtype=object)
        payload[0] = _OpensFile(self.marker)
        np.savez(path, **{"head/bias": payload, "head/kernel": np.zeros((2, 2), np.float32)})
        self.refused(path, "cannot read")

    def test_pickle_and_object_npy_named_npz(self):
        path = self.path("pickle.npz")
        with open(path, "wb") as f:
            pickle.dump({"head/bias": _OpensFile(self.marker)}, f)
        self.refused(path)
        path = self.path("array.npz")
        payload = np.empty(1, dtype=object)
        payload[0] = _OpensFile(self.marker)
        with open(path, "wb") as f:
            np.save(f, payload, allow_pickle=True)
        self.refused(path)


class DamagedContainers(tc.ConvertTestCase):
    """Files that are not what their name says, or are cut short."""

    def refused(self, checkpoint, *contains):
        return self.convert_fails(checkpoint, "--arch", ARCH, contains=(checkpoint,) + contains)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        return self.path(name)

    def test_empty_and_garbage_files_with_each_suffix(self):
        garbage = bytes(range(256)) * 8
        for suffix in (".safetensors", ".pth", ".bin", ".npz", ".weights"):
            with self.subTest(suffix=suffix):
                self.refused(self.write("empty" + suffix, b""))
                self.refused(self.write("garbage" + suffix, garbage))

    def test_truncated_torch_and_npz_files(self):
        t = tc.make_canonical(seed=70)
        tc.write_pth(self.path("whole.pth"), tc.timm_state(t))
        np.savez(self.path("whole.npz"), **tc.google_state(t))
        for name in ("whole.pth", "whole.npz"):
            with open(self.path(name), "rb") as f:
                data = f.read()
            for fraction in (0.1, 0.5, 0.9):
                with self.subTest(name=name, fraction=fraction):
                    suffix = os.path.splitext(name)[1]
                    self.refused(self.write(f"cut{suffix}", data[:int(len(data) * fraction)]))

    def test_directory_and_missing_paths(self):
        self.convert_fails(self.dir, "--arch", ARCH, contains=(self.dir,))
        self.convert_fails(self.path("missing.pth"), "--arch", ARCH, contains=("missing.pth",))

    def test_zip_that_is_neither_torch_nor_npz(self):
        with zipfile.ZipFile(self.path("other.weights"), "w") as z:
            z.writestr("readme.txt", "hello")
        self.refused(self.path("other.weights"), "neither")

    def test_safetensors_headers_that_lie(self):
        def header_file(name, header, buffer=b"\0" * 64):
            text = json.dumps(header).encode()
            return self.write(name, struct.pack("<Q", len(text)) + text + buffer)

        entry = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
        cases = {
            "length past the end": self.write("a.safetensors", struct.pack("<Q", 1 << 40) + b"{}"),
            "length impossible": self.write("b.safetensors", struct.pack("<Q", (1 << 64) - 1) + b"{}"),
            "too short": self.write("c.safetensors", b"\x10\0\0"),
            "not json": self.write("d.safetensors", struct.pack("<Q", 4) + b"{{{{"),
            "not utf-8": self.write("e.safetensors", struct.pack("<Q", 4) + b"{\xff\xfe}"),
            "a list": header_file("f.safetensors", [entry]),
            "offsets outside": header_file("g.safetensors", {"w": dict(entry, data_offsets=[0, 1 << 40])}),
            "offsets reversed": header_file("h.safetensors", {"w": dict(entry, data_offsets=[16, 0])}),
            "size mismatch": header_file("i.safetensors", {"w": dict(entry, shape=[5])}),
            "negative dim": header_file("j.safetensors", {"w": dict(entry, shape=[-4])}),
            "fractional dim": header_file("k.safetensors", {"w": dict(entry, shape=[1.5])}),
            "unknown dtype": header_file("l.safetensors", {"w": dict(entry, dtype="F128")}),
            "entry not an object": header_file("m.safetensors", {"w": 17}),
            "no tensors": header_file("n.safetensors", {"__metadata__": {"a": "b"}}),
        }
        for what, path in cases.items():
            with self.subTest(what=what):
                self.refused(path)

    # Found by this suite: these headers used to reach numpy / Python unchecked and
    # end in a traceback rather than a `convert.py: error:` line.
    def test_safetensors_headers_that_crash_the_parser(self):
        def header_file(name, header):
            text = header if isinstance(header, bytes) else json.dumps(header).encode()
            return self.write(name, struct.pack("<Q", len(text)) + text + b"\0" * 64)

        entry = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
        cases = {
            "element count overflows int64": header_file("o.safetensors", {"w": dict(entry, shape=[2**62, 4],
                                                                                      data_offsets=[0, 0])}),
            "zero dim beside a huge one": header_file("p.safetensors", {"w": dict(entry, shape=[0, 2**62],
                                                                                  data_offsets=[0, 0])}),
            "dim beyond int64": header_file("q.safetensors", {"w": dict(entry, shape=[2**70])}),
            "boolean dim": header_file("r.safetensors", {"w": dict(entry, shape=[True, 4])}),
            "shape not a list": header_file("s.safetensors", {"w": dict(entry, shape=4)}),
            "dtype not a string": header_file("t.safetensors", {"w": dict(entry, dtype=["F32"])}),
            "deeply nested json": header_file("u.safetensors", b"[" * 100000 + b"]" * 100000),
        }
        failures = []
        for what, path in cases.items():
            try:
                result = self.run_convert(path, "--arch", ARCH, "-o", self.path("out.ovit"))
            except Exception as e:  # what convert.py's main() lets escape
                failures.append(f"{what}: {type(e).__name__}")
                continue
            if result.returncode != 1 or not result.stderr.startswith("convert.py: error: "):
                failures.append(f"{what}: {result.stderr.strip()}")
        self.assertEqual(failures, [])


class LyingWeights(tc.ConvertTestCase):
    """Values and shapes the other tests do not try: each refusal names the tensor."""

    def test_hf_negative_infinity_is_named(self):
        state = tc.hf_state(tc.make_canonical(seed=71))
        name = "vit.encoder.layer.1.attention.attention.value.weight"
        state[name][3, 2] = -np.inf
        tc.write_safetensors(self.path("hf.safetensors"), state)
        self.convert_fails(self.path("hf.safetensors"), "--config", self.hf_config_file(), contains=(name,))

    def test_nan_outside_linear_layers_is_named(self):
        for name in ("cls_token", "pos_embed", "norm.bias", "patch_embed.proj.weight"):
            with self.subTest(name=name):
                state = tc.timm_state(tc.make_canonical(seed=72))
                state[name] = state[name].copy()
                state[name].reshape(-1)[1] = np.nan
                tc.write_safetensors(self.path("t.safetensors"), state)
                self.convert_fails(self.path("t.safetensors"), "--config", self.hf_config_file(),
                                   contains=(name, "NaN"))

    def test_nan_in_bf16_and_f16_and_in_pth(self):
        state = tc.timm_state(tc.make_canonical(seed=73))
        state["head.bias"] = state["head.bias"].copy()
        state["head.bias"][0] = np.nan
        for dtype in ("BF16", "F16"):
            with self.subTest(dtype=dtype):
                tc.write_safetensors(self.path("h.safetensors"), state, dtypes={"head.bias": dtype})
                self.convert_fails(self.path("h.safetensors"), "--config", self.hf_config_file(),
                                   contains=("head.bias",))
        tc.write_pth(self.path("h.pth"), state)
        self.convert_fails(self.path("h.pth"), "--config", self.hf_config_file(), contains=("head.bias",))

    def test_inf_in_f16_overflow_of_a_finite_f64(self):
        # 1e300 is finite as float64 but not as float32: the stored value is Inf.
        state = tc.timm_state(tc.make_canonical(seed=74))
        state["head.weight"] = state["head.weight"].astype(np.float64)
        state["head.weight"][0, 0] = 1e300
        tc.write_safetensors(self.path("f.safetensors"), state, dtypes={"head.weight": "F64"})
        self.convert_fails(self.path("f.safetensors"), "--config", self.hf_config_file(),
                           contains=("head.weight",))

    def test_degenerate_shapes_are_named(self):
        def mutations():
            yield "head.bias", np.zeros((tc.K, 1), np.float32)          # an extra axis
            yield "norm.weight", np.zeros((), np.float32)              # a scalar
            yield "blocks.0.norm1.bias", np.zeros((0,), np.float32)   # empty
            yield "blocks.1.mlp.fc2.weight", np.zeros((tc.MLP, tc.D), np.float32)  # transposed
        for name, value in mutations():
            with self.subTest(name=name):
                state = tc.timm_state(tc.make_canonical(seed=75))
                state[name] = value
                tc.write_safetensors(self.path("s.safetensors"), state)
                self.convert_fails(self.path("s.safetensors"), "--config", self.hf_config_file(),
                                   contains=(name,))

    def test_hf_unexpected_key_is_named(self):
        state = tc.hf_state(tc.make_canonical(seed=76))
        state["vit.encoder.layer.0.attention.attention.rotary.weight"] = np.zeros((2, 2), np.float32)
        tc.write_safetensors(self.path("hf.safetensors"), state)
        self.convert_fails(self.path("hf.safetensors"), "--config", self.hf_config_file(),
                           contains=("vit.encoder.layer.0.attention.attention.rotary.weight",))

    def test_google_transposed_kernel_is_named(self):
        state = tc.google_state(tc.make_canonical(seed=77))
        name = "Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel"
        state[name] = np.ascontiguousarray(state[name].T)
        np.savez(self.path("g.npz"), **state)
        self.convert_fails(self.path("g.npz"), "--config", self.hf_config_file(), contains=(name,))


if __name__ == "__main__":
    unittest.main()
