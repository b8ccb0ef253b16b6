"""Tests of weights/convert.py: checkpoints of each family → .ovit (weights/FORMAT.md).

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s tests/python -p 'test_convert*.py'

Every checkpoint is built here from one set of random canonical tensors, written
in each family's own layout (timm, Hugging Face, Google .npz) with the inverse of
the documented transforms; the converted files must give back those exact tensors.
Expected values are written out here, never produced by the converter's code.
"""

import contextlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERT = os.path.join(ROOT, "weights", "convert.py")
sys.path.insert(0, os.path.join(ROOT, "weights"))

import convert as convert_cli  # noqa: E402  (weights/convert.py)
from onevit_convert.ovit_reader import check_tensor_set, read_ovit  # noqa: E402

DEIT = os.path.join(ROOT, "..", "shared", "data", "deit_tiny_patch16_224", "model.safetensors")
IMAGENET_LABELS = os.path.join(ROOT, "..", "shared", "data", "labels", "imagenet_classes.txt")

# The tiny test model: D=32, depth 2, 2 heads of 16, MLP 128, 32x32 images in 8x8 patches
# (a 4x4 grid, 16 patch tokens), 3 channels, 10 classes.
D, DEPTH, HEADS, HEAD_DIM, MLP, IMAGE, PATCH, C, K = 32, 2, 2, 16, 128, 32, 8, 3, 10
GRID = (IMAGE // PATCH) ** 2


def f32(value):
    return float(np.float32(value))


# ----------------------------------------------------------------------------- canonical model

def canonical_order(depth=DEPTH, qkv_bias=True, final_norm=True, head_norm=False, distilled=False):
    """FORMAT.md's tensor table, transcribed."""
    names = ["patch_embed.weight", "patch_embed.bias", "prefix_tokens", "pos_embed"]
    for i in range(depth):
        block = ["norm1.weight", "norm1.bias", "attn.qkv.weight"]
        block += ["attn.qkv.bias"] if qkv_bias else []
        block += ["attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
                  "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"]
        names += [f"blocks.{i}.{s}" for s in block]
    names += ["norm.weight", "norm.bias"] if final_norm else []
    names += ["head_norm.weight", "head_norm.bias"] if head_norm else []
    names += ["head.weight", "head.bias"]
    names += ["head_dist.weight", "head_dist.bias"] if distilled else []
    return names


def make_canonical(seed=0, dim=D, depth=DEPTH, heads=HEADS, mlp=MLP, image=IMAGE, patch=PATCH,
                   classes=K, qkv_bias=True, distilled=False):
    rng = np.random.default_rng(seed)
    inner = dim  # heads × head_dim = D in every model here
    tokens = 2 if distilled else 1
    grid = (image // patch) ** 2

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    t = {"patch_embed.weight": r(dim, C, patch, patch), "patch_embed.bias": r(dim),
         "prefix_tokens": r(tokens, dim), "pos_embed": r(tokens + grid, dim),
         "norm.weight": r(dim), "norm.bias": r(dim),
         "head.weight": r(classes, dim), "head.bias": r(classes)}
    if distilled:
        t["head_dist.weight"], t["head_dist.bias"] = r(classes, dim), r(classes)
    for i in range(depth):
        b = f"blocks.{i}."
        t.update({b + "norm1.weight": r(dim), b + "norm1.bias": r(dim),
                  b + "attn.qkv.weight": r(3 * inner, dim),
                  b + "attn.proj.weight": r(dim, inner), b + "attn.proj.bias": r(dim),
                  b + "norm2.weight": r(dim), b + "norm2.bias": r(dim),
                  b + "mlp.fc1.weight": r(mlp, dim), b + "mlp.fc1.bias": r(mlp),
                  b + "mlp.fc2.weight": r(dim, mlp), b + "mlp.fc2.bias": r(dim)})
        if qkv_bias:
            t[b + "attn.qkv.bias"] = r(3 * inner)
    return t


# ----------------------------------------------------------------------------- family layouts

def timm_state(t, depth=DEPTH):
    """timm VisionTransformer names (reference-facts 3.1)."""
    dim = t["patch_embed.weight"].shape[0]
    s = {"patch_embed.proj.weight": t["patch_embed.weight"], "patch_embed.proj.bias": t["patch_embed.bias"],
         "cls_token": t["prefix_tokens"][0].reshape(1, 1, dim),
         "pos_embed": t["pos_embed"][None], "norm.weight": t["norm.weight"], "norm.bias": t["norm.bias"],
         "head.weight": t["head.weight"], "head.bias": t["head.bias"]}
    if "head_dist.weight" in t:
        s["dist_token"] = t["prefix_tokens"][1].reshape(1, 1, dim)
        s["head_dist.weight"], s["head_dist.bias"] = t["head_dist.weight"], t["head_dist.bias"]
    for name, value in t.items():
        if name.startswith("blocks."):
            s[name] = value
    return s


def hf_state(t, depth=DEPTH):
    """transformers ViTForImageClassification names (reference-facts 3.2): q/k/v split."""
    s = {"vit.embeddings.patch_embeddings.projection.weight": t["patch_embed.weight"],
         "vit.embeddings.patch_embeddings.projection.bias": t["patch_embed.bias"],
         "vit.embeddings.cls_token": t["prefix_tokens"][None],
         "vit.embeddings.position_embeddings": t["pos_embed"][None],
         "vit.layernorm.weight": t["norm.weight"], "vit.layernorm.bias": t["norm.bias"],
         "classifier.weight": t["head.weight"], "classifier.bias": t["head.bias"]}
    renames = {"norm1": "layernorm_before", "attn.proj": "attention.output.dense",
               "norm2": "layernorm_after", "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
    for i in range(depth):
        b, h = f"blocks.{i}.", f"vit.encoder.layer.{i}."
        for ours, theirs in renames.items():
            for part in ("weight", "bias"):
                s[f"{h}{theirs}.{part}"] = t[f"{b}{ours}.{part}"]
        for part in ("weight", "bias"):
            if f"{b}attn.qkv.{part}" in t:
                q, k, v = np.split(t[f"{b}attn.qkv.{part}"], 3, axis=0)
                for name, value in (("query", q), ("key", k), ("value", v)):
                    s[f"{h}attention.attention.{name}.{part}"] = np.ascontiguousarray(value)
    return s


def google_state(t, depth=DEPTH, heads=HEADS, prefix=""):
    """vit_jax .npz names (reference-facts 3.3): HWIO conv, [in, out] Dense, per-head attention."""
    dim = t["patch_embed.weight"].shape[0]
    head_dim = dim // heads
    s = {"embedding/kernel": t["patch_embed.weight"].transpose(2, 3, 1, 0),  # OIHW → HWIO
         "embedding/bias": t["patch_embed.bias"], "cls": t["prefix_tokens"][None],
         "Transformer/posembed_input/pos_embedding": t["pos_embed"][None],
         "Transformer/encoder_norm/scale": t["norm.weight"], "Transformer/encoder_norm/bias": t["norm.bias"],
         "head/kernel": t["head.weight"].T, "head/bias": t["head.bias"]}
    for i in range(depth):
        b, g = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        a = g + "MultiHeadDotProductAttention_1/"
        s[g + "LayerNorm_0/scale"], s[g + "LayerNorm_0/bias"] = t[b + "norm1.weight"], t[b + "norm1.bias"]
        s[g + "LayerNorm_2/scale"], s[g + "LayerNorm_2/bias"] = t[b + "norm2.weight"], t[b + "norm2.bias"]
        weights = np.split(t[b + "attn.qkv.weight"], 3, axis=0)      # each [I, D]
        biases = np.split(t[b + "attn.qkv.bias"], 3, axis=0)
        for name, w, bias in zip(("query", "key", "value"), weights, biases):
            s[a + name + "/kernel"] = w.T.reshape(dim, heads, head_dim)  # [D, H, Dh]
            s[a + name + "/bias"] = bias.reshape(heads, head_dim)
        s[a + "out/kernel"] = t[b + "attn.proj.weight"].T.reshape(heads, head_dim, dim)  # [H, Dh, D]
        s[a + "out/bias"] = t[b + "attn.proj.bias"]
        s[g + "MlpBlock_3/Dense_0/kernel"] = t[b + "mlp.fc1.weight"].T
        s[g + "MlpBlock_3/Dense_0/bias"] = t[b + "mlp.fc1.bias"]
        s[g + "MlpBlock_3/Dense_1/kernel"] = t[b + "mlp.fc2.weight"].T
        s[g + "MlpBlock_3/Dense_1/bias"] = t[b + "mlp.fc2.bias"]
    return {prefix + k: np.ascontiguousarray(v) for k, v in s.items()}


# ----------------------------------------------------------------------------- file writers

def write_safetensors(path, tensors, dtypes=None):
    """safetensors by hand: u64 header length, JSON header, byte buffer."""
    dtypes = dtypes or {}
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in tensors.items():
        kind = dtypes.get(name, "F32")
        if kind == "BF16":  # the top 16 bits of each float32
            raw = (np.ascontiguousarray(array, "<f4").view("<u4") >> 16).astype("<u2").tobytes()
        else:
            np_type = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8"}[kind]
            raw = np.ascontiguousarray(array, np_type).tobytes()
        header[name] = {"dtype": kind, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def write_pth(path, tensors, wrap=None):
    import torch
    state = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
    torch.save({wrap: state} if wrap else state, path)


def hf_config(**overrides):
    config = {"model_type": "vit", "architectures": ["ViTForImageClassification"],
              "hidden_size": D, "num_hidden_layers": DEPTH, "num_attention_heads": HEADS,
              "intermediate_size": MLP, "hidden_act": "gelu", "layer_norm_eps": 1e-6,
              "image_size": IMAGE, "patch_size": PATCH, "num_channels": C, "qkv_bias": True,
              "id2label": {str(i): f"class {i}" for i in range(K)}}
    config.update(overrides)
    return config


def timm_config(architecture, **model_args):
    return {"architecture": architecture, "num_classes": K, "global_pool": "token",
            "model_args": model_args, "pretrained_cfg": {"num_classes": K}}


TINY_TIMM_ARGS = {"embed_dim": D, "depth": DEPTH, "num_heads": HEADS, "mlp_ratio": MLP / D,
                  "img_size": IMAGE, "patch_size": PATCH}


class ConvertTestCase(unittest.TestCase):
    def setUp(self):
        self._dir = tempfile.TemporaryDirectory(prefix="onevit_convert_test")
        self.dir = self._dir.name

    def tearDown(self):
        self._dir.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def write_json(self, name, data):
        with open(self.path(name), "w") as f:
            json.dump(data, f)
        return self.path(name)

    def hf_config_file(self, **overrides):
        return self.write_json("config.json", hf_config(**overrides))

    def run_convert(self, *args):
        """convert.py's main() in this process (no interpreter and torch start-up per call)."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = convert_cli.main(list(args))
        return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())

    def run_cli(self, *args):
        """The real command line, as users and CMake run it."""
        return subprocess.run([sys.executable, CONVERT, *args], capture_output=True, text=True,
                              timeout=120)

    def convert(self, checkpoint, *args, output="out.ovit"):
        result = self.run_convert(checkpoint, *args, "-o", self.path(output))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(result.stdout.strip().splitlines()), 1, result.stdout)
        ovit = read_ovit(self.path(output))   # checks both CRCs and the layout
        check_tensor_set(ovit)
        return ovit

    def convert_fails(self, checkpoint, *args, contains=()):
        """Asserts a one-line `convert.py: error:` on stderr, status 1, and no output file."""
        output = self.path("failed.ovit")
        result = self.run_convert(checkpoint, *args, "-o", output)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        lines = [line for line in result.stderr.splitlines() if line]
        errors = [line for line in lines if line.startswith("convert.py: error: ")]
        self.assertEqual(len(errors), 1, result.stderr)
        for text in contains:
            self.assertIn(text, errors[0])
        self.assertFalse(os.path.exists(output))
        return errors[0]

    def assertTensorsEqual(self, ovit, expected, order):
        self.assertEqual(ovit.order, order)
        for name in order:
            self.assertEqual(ovit.tensors[name].dtype, np.dtype("<f4"), name)
            self.assertTrue(np.array_equal(ovit.tensors[name], expected[name]), name)


# ----------------------------------------------------------------------------- the tests

class FamiliesAgree(ConvertTestCase):
    """One model, five containers/layouts, one result."""

    def test_every_family_gives_the_same_canonical_tensors(self):
        t = make_canonical(seed=1)
        config = self.hf_config_file()
        write_safetensors(self.path("timm.safetensors"), timm_state(t))
        write_pth(self.path("timm.pth"), timm_state(t))
        write_safetensors(self.path("hf.safetensors"), hf_state(t))
        np.savez(self.path("google.npz"), **google_state(t))
        np.savez(self.path("google_opt.npz"), **google_state(t, prefix="opt/target/"))
        cases = [("timm.safetensors", "timm"), ("timm.pth", "timm"), ("hf.safetensors", "hf"),
                 ("google.npz", "google"), ("google_opt.npz", "google")]
        results = []
        for checkpoint, family in cases:
            ovit = self.convert(self.path(checkpoint), "--config", config, output=checkpoint + ".ovit")
            self.assertTensorsEqual(ovit, t, canonical_order())
            self.assertEqual(ovit.metadata["arch.family"], family)
            results.append(ovit)
        for other in results[1:]:
            # arch.family and the embedding's description name the source library.
            a = {k: v for k, v in results[0].metadata.items() if k not in ("arch.family", "embedding")}
            b = {k: v for k, v in other.metadata.items() if k not in ("arch.family", "embedding")}
            self.assertEqual(a, b)

    def test_metadata_from_hf_config(self):
        t = make_canonical(seed=2)
        write_safetensors(self.path("hf.safetensors"), hf_state(t))
        m = self.convert(self.path("hf.safetensors"), "--config", self.hf_config_file()).metadata
        expected = {
            "arch.family": "hf", "arch.image_height": 32, "arch.image_width": 32, "arch.channels": 3,
            "arch.patch_size": 8, "arch.dim": 32, "arch.depth": 2, "arch.heads": 2,
            "arch.head_dim": 16, "arch.mlp_dim": 128, "arch.num_classes": 10,
            "arch.prefix_tokens": 1, "arch.norm_eps": f32(1e-6), "arch.gelu": "erf",
            "arch.attn_scale": 0.25, "arch.qkv_bias": 1, "arch.attn_proj": 1,
            "arch.final_norm": 1, "arch.pool": "token", "arch.head_norm": 0,
            "arch.head": "linear", "preprocess.resize": "direct", "preprocess.resize_size": 32,
            "preprocess.interpolation": "bilinear", "preprocess.mean": [0.5, 0.5, 0.5],
            "preprocess.std": [0.5, 0.5, 0.5], "labels": [f"class {i}" for i in range(10)],
            "embedding": "transformers ViTForImageClassification's classifier input (the normed class token)"}
        self.assertEqual(m, expected)

    def test_file_layout_bytes(self):
        """The fixed header and alignment, checked on the raw bytes."""
        t = make_canonical(seed=3)
        write_safetensors(self.path("timm.safetensors"), timm_state(t))
        ovit = self.convert(self.path("timm.safetensors"), "--config", self.hf_config_file())
        with open(self.path("out.ovit"), "rb") as f:
            data = f.read()
        self.assertEqual(data[:8], bytes([0x4F, 0x4E, 0x45, 0x56, 0x49, 0x54, 0x00, 0x01]))
        version, header_crc, data_offset, data_crc, reserved = struct.unpack("<IIQII", data[8:32])
        self.assertEqual((version, reserved), (1, 0))
        self.assertEqual(data_offset % 64, 0)
        self.assertEqual(header_crc, zlib.crc32(data[16:data_offset]))
        self.assertEqual(data_crc, zlib.crc32(data[data_offset:]))
        # The first metadata entry, decoded by hand: arch.family, a string (type 2), "timm".
        count, key_length = struct.unpack("<II", data[32:40])
        self.assertEqual(count, len(ovit.metadata))
        self.assertEqual(data[40:40 + key_length], b"arch.family")
        kind, value_length = struct.unpack("<II", data[40 + key_length:48 + key_length])
        self.assertEqual((kind, data[48 + key_length:48 + key_length + value_length]), (2, b"timm"))
        offsets = [ovit.offsets[n] for n in ovit.order]
        self.assertTrue(all(o % 64 == 0 for o in offsets))
        self.assertEqual(offsets, sorted(offsets))
        last = ovit.order[-1]
        self.assertEqual(len(data), data_offset + offsets[-1] + ovit.tensors[last].nbytes)
        # A tensor's bytes sit at data_offset + offset, little-endian f32, row-major.
        name = "blocks.1.mlp.fc1.weight"
        start = data_offset + ovit.offsets[name]
        self.assertEqual(data[start:start + t[name].nbytes], t[name].astype("<f4").tobytes())


class TimmFeatures(ConvertTestCase):
    def test_pth_wrapped_in_model_key_with_bf16_and_f16_weights(self):
        import torch
        t = make_canonical(seed=4)
        state = {k: torch.from_numpy(v.copy()) for k, v in timm_state(t).items()}
        state["head.weight"] = state["head.weight"].to(torch.bfloat16)
        state["blocks.0.mlp.fc1.weight"] = state["blocks.0.mlp.fc1.weight"].to(torch.float16)
        torch.save({"model": state, "epoch": 3}, self.path("ckpt.pth"))
        expected = dict(t)
        # bf16 keeps the top 16 bits of each float32 (round to nearest even when torch casts).
        expected["head.weight"] = state["head.weight"].to(torch.float32).numpy()
        fc1 = t["blocks.0.mlp.fc1.weight"]
        expected["blocks.0.mlp.fc1.weight"] = fc1.astype(np.float16).astype(np.float32)
        ovit = self.convert(self.path("ckpt.pth"), "--config", self.hf_config_file())
        self.assertTensorsEqual(ovit, expected, canonical_order())

    def test_safetensors_bf16_f16_f64(self):
        t = make_canonical(seed=5)
        write_safetensors(self.path("m.safetensors"), timm_state(t),
                          dtypes={"head.weight": "BF16", "pos_embed": "F16", "norm.bias": "F64"})
        expected = dict(t)
        bits = t["head.weight"].view(np.uint32) & np.uint32(0xFFFF0000)
        expected["head.weight"] = bits.view(np.float32)
        expected["pos_embed"] = t["pos_embed"].astype(np.float16).astype(np.float32)
        ovit = self.convert(self.path("m.safetensors"), "--config", self.hf_config_file())
        self.assertTensorsEqual(ovit, expected, canonical_order())

    def test_distilled_deit(self):
        t = make_canonical(seed=6, distilled=True)
        write_safetensors(self.path("d.safetensors"), timm_state(t))
        config = self.write_json("config.json",
                                 timm_config("deit_tiny_distilled_patch16_224", **TINY_TIMM_ARGS))
        ovit = self.convert(self.path("d.safetensors"), "--config", config)
        self.assertTensorsEqual(ovit, t, canonical_order(distilled=True))
        m = ovit.metadata
        self.assertEqual((m["arch.prefix_tokens"], m["arch.head"]), (2, "distilled"))
        self.assertEqual(m["arch.heads"], 2)
        # DeiT eval: shorter side to size / 0.875 (floor(32 / 0.875) = 36), bicubic, ImageNet stats.
        self.assertEqual((m["preprocess.resize"], m["preprocess.resize_size"], m["preprocess.interpolation"]),
                         ("shorter_then_crop", 36, "bicubic"))
        self.assertEqual(m["preprocess.mean"], [f32(0.485), f32(0.456), f32(0.406)])
        self.assertEqual(m["preprocess.std"], [f32(0.229), f32(0.224), f32(0.225)])

    def test_distilled_checkpoint_with_plain_deit_arch_is_a_contradiction(self):
        t = make_canonical(seed=6, distilled=True)
        write_safetensors(self.path("d.safetensors"), timm_state(t))
        config = self.write_json("config.json", timm_config("deit_tiny_patch16_224", **TINY_TIMM_ARGS))
        self.convert_fails(self.path("d.safetensors"), "--config", config,
                           contains=("prefix_tokens=1", "prefix_tokens=2"))

    def test_layerscale_is_folded(self):
        t = make_canonical(seed=7)
        state = timm_state(t)
        rng = np.random.default_rng(70)
        expected = dict(t)
        for i in range(DEPTH):
            for ls, layer in (("ls1", "attn.proj"), ("ls2", "mlp.fc2")):
                gamma = rng.uniform(0.1, 2.0, D).astype(np.float32)
                state[f"blocks.{i}.{ls}.gamma"] = gamma
                expected[f"blocks.{i}.{layer}.weight"] = t[f"blocks.{i}.{layer}.weight"] * gamma[:, None]
                expected[f"blocks.{i}.{layer}.bias"] = t[f"blocks.{i}.{layer}.bias"] * gamma
        write_safetensors(self.path("ls.safetensors"), state)
        ovit = self.convert(self.path("ls.safetensors"), "--config", self.hf_config_file())
        self.assertTensorsEqual(ovit, expected, canonical_order())

    def test_fc_norm_with_token_pooling_becomes_head_norm(self):
        t = make_canonical(seed=8)
        state = timm_state(t)
        state["fc_norm.weight"], state["fc_norm.bias"] = state.pop("norm.weight"), state.pop("norm.bias")
        write_safetensors(self.path("fc.safetensors"), state)
        # timm builds fc_norm with token pooling only when model_args says fc_norm=True.
        config = self.write_json("config.json", timm_config("vit_tiny_patch16_224", **TINY_TIMM_ARGS,
                                                            fc_norm=True))
        ovit = self.convert(self.path("fc.safetensors"), "--config", config)
        expected = dict(t)
        expected["head_norm.weight"] = expected.pop("norm.weight")
        expected["head_norm.bias"] = expected.pop("norm.bias")
        self.assertTensorsEqual(ovit, expected, canonical_order(final_norm=False, head_norm=True))
        m = ovit.metadata
        self.assertEqual((m["arch.final_norm"], m["arch.head_norm"], m["arch.pool"]), (0, 1, "token"))

    def test_fc_norm_with_average_pooling_pools_patch_tokens(self):
        # timm's global_pool='avg' averages the patch tokens only, then applies fc_norm.
        t = make_canonical(seed=8)
        state = timm_state(t)
        state["fc_norm.weight"], state["fc_norm.bias"] = state.pop("norm.weight"), state.pop("norm.bias")
        write_safetensors(self.path("fc.safetensors"), state)
        config = timm_config("vit_tiny_patch16_224", **TINY_TIMM_ARGS)
        config["global_pool"] = "avg"
        ovit = self.convert(self.path("fc.safetensors"), "--config", self.write_json("c.json", config))
        m = ovit.metadata
        self.assertEqual((m["arch.final_norm"], m["arch.head_norm"], m["arch.pool"]), (0, 1, "mean_patches"))

    def test_fc_norm_without_stated_pooling_means_average_pooling(self):
        t = make_canonical(seed=8)
        state = timm_state(t)
        state["fc_norm.weight"], state["fc_norm.bias"] = state.pop("norm.weight"), state.pop("norm.bias")
        write_safetensors(self.path("fc.safetensors"), state)
        # A model timm's registry does not name (here: only --heads): fc_norm implies average pooling.
        m = self.convert(self.path("fc.safetensors"), "--heads", str(HEADS)).metadata
        self.assertEqual((m["arch.final_norm"], m["arch.head_norm"], m["arch.pool"]), (0, 1, "mean_patches"))


    def test_pos_embed_without_prefix_rows_gets_zero_rows(self):
        t = make_canonical(seed=9)
        state = timm_state(t)
        state["pos_embed"] = t["pos_embed"][1:][None]  # timm no_embed_class=True
        write_safetensors(self.path("n.safetensors"), state)
        expected = dict(t)
        expected["pos_embed"] = np.concatenate([np.zeros((1, D), np.float32), t["pos_embed"][1:]])
        ovit = self.convert(self.path("n.safetensors"), "--config", self.hf_config_file())
        self.assertTensorsEqual(ovit, expected, canonical_order())

    def test_no_qkv_bias(self):
        t = make_canonical(seed=10, qkv_bias=False)
        write_safetensors(self.path("timm.safetensors"), timm_state(t))
        write_safetensors(self.path("hf.safetensors"), hf_state(t))
        config = self.hf_config_file(qkv_bias=False)
        for checkpoint in ("timm.safetensors", "hf.safetensors"):
            ovit = self.convert(self.path(checkpoint), "--config", config)
            self.assertTensorsEqual(ovit, t, canonical_order(qkv_bias=False))
            self.assertEqual(ovit.metadata["arch.qkv_bias"], 0)

    def test_timm_config_384_table_entry_and_pretrained_cfg_overrides(self):
        t = make_canonical(seed=11, image=384, patch=16)
        write_safetensors(self.path("m.safetensors"), timm_state(t))
        args = {"embed_dim": D, "depth": DEPTH, "num_heads": HEADS, "mlp_ratio": 4.0}
        config = timm_config("vit_small_patch16_384.augreg_in21k_ft_in1k", **args)
        m = self.convert(self.path("m.safetensors"), "--config", self.write_json("a.json", config)).metadata
        self.assertEqual((m["arch.image_height"], m["arch.patch_size"], m["arch.heads"]), (384, 16, 2))
        # 384 models: crop_pct 1.0, so the shorter side goes to 384; bicubic; mean = std = 0.5.
        self.assertEqual((m["preprocess.resize"], m["preprocess.resize_size"], m["preprocess.interpolation"],
                          m["preprocess.mean"], m["preprocess.std"]),
                         ("shorter_then_crop", 384, "bicubic", [0.5] * 3, [0.5] * 3))
        config["pretrained_cfg"].update({"crop_pct": 0.875, "interpolation": "bilinear",
                                         "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                         "label_names": [f"n{i}" for i in range(K)]})
        m = self.convert(self.path("m.safetensors"), "--config", self.write_json("b.json", config)).metadata
        self.assertEqual((m["preprocess.resize_size"], m["preprocess.interpolation"]), (438, "bilinear"))
        self.assertEqual(m["preprocess.mean"], [f32(0.485), f32(0.456), f32(0.406)])
        self.assertEqual(m["labels"], [f"n{i}" for i in range(K)])

    def test_arch_table_vit_tiny_224(self):
        # Real vit_tiny shapes (D 192, depth 12, 3 heads): the only way to use --arch alone.
        t = make_canonical(seed=12, dim=192, depth=12, heads=3, mlp=768, image=224, patch=16, classes=1000)
        write_safetensors(self.path("v.safetensors"), timm_state(t, depth=12))
        ovit = self.convert(self.path("v.safetensors"), "--arch", "vit_tiny_patch16_224")
        self.assertTensorsEqual(ovit, t, canonical_order(depth=12))
        m = ovit.metadata
        self.assertEqual((m["arch.dim"], m["arch.depth"], m["arch.heads"], m["arch.head_dim"],
                          m["arch.mlp_dim"], m["arch.num_classes"], m["arch.norm_eps"], m["arch.gelu"],
                          m["arch.attn_scale"]),
                         (192, 12, 3, 64, 768, 1000, f32(1e-6), "erf", 0.125))
        # augreg 224: crop_pct 0.9 → floor(224 / 0.9) = 248, bicubic, mean = std = 0.5.
        self.assertEqual((m["preprocess.resize"], m["preprocess.resize_size"], m["preprocess.interpolation"],
                          m["preprocess.mean"], m["preprocess.std"]),
                         ("shorter_then_crop", 248, "bicubic", [0.5] * 3, [0.5] * 3))
        self.assertNotIn("labels", m)


class HfAndGoogleSpecifics(ConvertTestCase):
    def test_preprocessor_config_beside_config(self):
        t = make_canonical(seed=13)
        write_safetensors(self.path("hf.safetensors"), hf_state(t))
        config = self.hf_config_file(hidden_act="gelu_new")
        self.write_json("preprocessor_config.json", {
            "do_resize": True, "size": {"height": 32, "width": 32}, "resample": 3,
            "do_normalize": True, "image_mean": [0.1, 0.2, 0.3], "image_std": [0.4, 0.5, 0.6]})
        m = self.convert(self.path("hf.safetensors"), "--config", config).metadata
        self.assertEqual(m["arch.gelu"], "tanh")
        self.assertEqual((m["preprocess.resize"], m["preprocess.interpolation"]), ("direct", "bicubic"))
        self.assertEqual(m["preprocess.mean"], [f32(0.1), f32(0.2), f32(0.3)])
        self.assertEqual(m["preprocess.std"], [f32(0.4), f32(0.5), f32(0.6)])
        # Without layer_norm_eps, HF's default 1e-12 applies.
        without_eps = hf_config()
        del without_eps["layer_norm_eps"]
        m = self.convert(self.path("hf.safetensors"), "--config",
                         self.write_json("config.json", without_eps)).metadata
        self.assertEqual(m["arch.norm_eps"], f32(1e-12))

    def test_labels_file_plain_and_synset_style(self):
        t = make_canonical(seed=14)
        write_safetensors(self.path("hf.safetensors"), hf_state(t))
        with open(self.path("plain.txt"), "w") as f:
            f.write("".join(f"  name {i}  \n" for i in range(K)) + "\n")
        with open(self.path("synset.txt"), "w") as f:
            f.write("".join(f"n{1440764 + i:08d} name {i}, alias\n" for i in range(K)))
        config = self.hf_config_file()
        m = self.convert(self.path("hf.safetensors"), "--config", config,
                         "--labels", self.path("plain.txt")).metadata
        self.assertEqual(m["labels"], [f"name {i}" for i in range(K)])
        m = self.convert(self.path("hf.safetensors"), "--config", config,
                         "--labels", self.path("synset.txt")).metadata
        self.assertEqual(m["labels"], [f"name {i}, alias" for i in range(K)])

    def test_google_with_arch_gets_google_preprocessing(self):
        t = make_canonical(seed=15, dim=192, depth=12, heads=3, mlp=768, image=224, patch=16, classes=1000)
        np.savez(self.path("g.npz"), **google_state(t, depth=12, heads=3))
        ovit = self.convert(self.path("g.npz"), "--arch", "vit_tiny_patch16_224")
        self.assertTensorsEqual(ovit, t, canonical_order(depth=12))
        m = ovit.metadata
        self.assertEqual((m["arch.family"], m["arch.gelu"], m["preprocess.resize"],
                          m["preprocess.interpolation"], m["preprocess.mean"], m["preprocess.std"]),
                         ("google", "erf", "direct", "bilinear", [0.5] * 3, [0.5] * 3))

    def test_google_heads_contradiction(self):
        t = make_canonical(seed=16)
        np.savez(self.path("g.npz"), **google_state(t, heads=4))  # kernels say 4 heads of 8
        self.convert_fails(self.path("g.npz"), "--config", self.hf_config_file(),
                           contains=("heads=2", "heads=4"))


class CommandLine(ConvertTestCase):
    """The process contract: one summary line and status 0; one error line and status 1."""

    def test_success(self):
        write_safetensors(self.path("m.safetensors"), timm_state(make_canonical(seed=30)))
        result = self.run_cli(self.path("m.safetensors"), "--config", self.hf_config_file(),
                              "-o", self.path("m.ovit"))
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        self.assertEqual(len(result.stdout.splitlines()), 1)
        self.assertIn("timm", result.stdout)
        self.assertIn(self.path("m.ovit"), result.stdout)
        check_tensor_set(read_ovit(self.path("m.ovit")))

    def test_errors(self):
        for args in ([self.path("absent.safetensors"), "--arch", "vit_base_patch16_224"],
                     [self.path("absent.safetensors")],                       # no -o
                     [self.path("a"), "--arch", "vit_base_patch16_224", "--config", "c.json"]):
            result = self.run_cli(*args, *(["-o", self.path("x.ovit")] if len(args) != 1 else []))
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertEqual(result.stdout, "")
            lines = result.stderr.splitlines()
            self.assertEqual(len(lines), 1, result.stderr)
            self.assertTrue(lines[0].startswith("convert.py: error: "), lines[0])


class Rejections(ConvertTestCase):
    def timm_file(self, mutate=None, seed=20, **kwargs):
        state = timm_state(make_canonical(seed=seed, **kwargs))
        if mutate:
            mutate(state)
        write_safetensors(self.path("m.safetensors"), state)
        return self.path("m.safetensors")

    def test_unknown_layout_lists_what_was_expected(self):
        write_safetensors(self.path("x.safetensors"), {"encoder.w": np.zeros(3, np.float32)})
        self.convert_fails(self.path("x.safetensors"), "--config", self.hf_config_file(),
                           contains=("encoder.w", "timm: patch_embed.proj.weight", "embeddings.patch_embedding",
                                     "embedding/kernel", "conv_proj", "visual.conv1.weight",
                                     "to_patch_embedding.{1,2,3}.*", "--help"))

    def test_unknown_layout_of_thousands_of_tensors_is_one_short_line(self):
        # A ResNet-style checkpoint of 1,857 tensors: its first names, not all of them.
        state = {f"layer{i // 100}.{i % 100}.conv.weight": np.zeros((2, 2), np.float32) for i in range(1857)}
        write_safetensors(self.path("cnn.safetensors"), state)
        error = self.convert_fails(self.path("cnn.safetensors"), "--arch", "vit_tiny_patch16_224",
                                   contains=("1857 tensors", "layer0.0.conv.weight", "... and 1852 more"))
        self.assertLess(len(error), 800)

    def test_bare_hf_vit_model_is_headless(self):
        t = make_canonical(seed=21)
        state = {k[len("vit."):]: v for k, v in hf_state(t).items() if k.startswith("vit.")}
        write_safetensors(self.path("bare.safetensors"), state)
        ovit = self.convert(self.path("bare.safetensors"), "--config", self.hf_config_file())
        m = ovit.metadata
        self.assertEqual((m["arch.num_classes"], m["arch.head"], m["arch.pool"]), (0, "none", "token"))
        self.assertIn("normed class token", m["embedding"])
        self.assertNotIn("labels", m)  # the config's id2label belongs to no classifier here
        self.assertTensorsEqual(ovit, {k: v for k, v in t.items() if not k.startswith("head.")},
                                canonical_order()[:-2])
        # Without its config.json, a transformers checkpoint cannot be described.
        self.convert_fails(self.path("bare.safetensors"), contains=("transformers", "config.json"))

    def test_missing_and_unexpected_keys_are_named(self):
        def mutate(s):
            del s["blocks.1.mlp.fc2.weight"]
            s["blocks.0.attn.extra.weight"] = np.zeros(2, np.float32)
        self.convert_fails(self.timm_file(mutate), "--config", self.hf_config_file(),
                           contains=("missing 1", "blocks.1.mlp.fc2.weight",
                                     "unexpected 1", "blocks.0.attn.extra.weight"))

    def test_missing_hf_and_google_keys_are_named(self):
        t = make_canonical(seed=22)
        state = hf_state(t)
        del state["vit.encoder.layer.1.attention.attention.value.bias"]
        write_safetensors(self.path("hf.safetensors"), state)
        self.convert_fails(self.path("hf.safetensors"), "--config", self.hf_config_file(),
                           contains=("vit.encoder.layer.1.attention.attention.value.bias",))
        state = google_state(t)
        del state["Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias"]
        state["pre_logits_typo/kernel"] = np.zeros(2, np.float32)
        np.savez(self.path("g.npz"), **state)
        self.convert_fails(self.path("g.npz"), "--config", self.hf_config_file(),
                           contains=("Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias",
                                     "pre_logits_typo/kernel"))

    def test_nan_and_inf_are_named(self):
        def nan(s):
            s["blocks.0.mlp.fc1.weight"][3, 4] = np.nan
        self.convert_fails(self.timm_file(nan), "--config", self.hf_config_file(),
                           contains=("blocks.0.mlp.fc1.weight", "NaN"))
        state = google_state(make_canonical(seed=23))
        state["Transformer/encoderblock_0/MultiHeadDotProductAttention_1/key/kernel"][0, 1, 2] = np.inf
        np.savez(self.path("g.npz"), **state)
        self.convert_fails(self.path("g.npz"), "--config", self.hf_config_file(),
                           contains=("Transformer/encoderblock_0/MultiHeadDotProductAttention_1/key/kernel",))

    def test_integer_weights_are_refused(self):
        state = timm_state(make_canonical(seed=24))
        write_safetensors(self.path("i.safetensors"), state, dtypes={"head.bias": "I64"})
        self.convert_fails(self.path("i.safetensors"), "--config", self.hf_config_file(),
                           contains=("head.bias", "int64"))

    def test_wrong_shapes_are_refused(self):
        def fc1(s):  # one block with a different MLP width
            s["blocks.1.mlp.fc1.weight"] = np.zeros((MLP + 8, D), np.float32)
        self.convert_fails(self.timm_file(fc1), "--config", self.hf_config_file(),
                           contains=("blocks.1.mlp.fc1.weight", "[136, 32]", "[128, 32]"))
        # The config contradicts the weights: both values named.
        self.convert_fails(self.timm_file(), "--config", self.hf_config_file(hidden_size=64),
                           contains=("dim=64", "dim=32"))
        self.convert_fails(self.timm_file(), "--config", self.hf_config_file(intermediate_size=64),
                           contains=("mlp_dim=64", "mlp_dim=128"))
        self.convert_fails(self.timm_file(), "--config", self.hf_config_file(num_hidden_layers=3),
                           contains=("depth=3", "depth=2"))
        self.convert_fails(self.timm_file(), "--config", self.hf_config_file(image_size=64),
                           contains=("65 position tokens", "17"))
        self.convert_fails(self.timm_file(), "--config", self.hf_config_file(id2label={"0": "a", "1": "b"}),
                           contains=("num_classes=2", "num_classes=10"))

    def test_label_count_must_match(self):
        with open(self.path("labels.txt"), "w") as f:
            f.write("a\nb\nc\n")
        self.convert_fails(self.timm_file(), "--config", self.hf_config_file(),
                           "--labels", self.path("labels.txt"), contains=("3 labels", "10 classes"))

    def test_unsupported_timm_features(self):
        def qk_norm(s):
            for i in range(DEPTH):
                for n in ("q_norm", "k_norm"):
                    s[f"blocks.{i}.attn.{n}.weight"] = np.ones(D // HEADS, np.float32)
                    s[f"blocks.{i}.attn.{n}.bias"] = np.zeros(D // HEADS, np.float32)
        self.convert_fails(self.timm_file(qk_norm), "--config", self.hf_config_file(),
                           contains=("query/key normalisation", "blocks.0.attn.k_norm.bias"))

        def rms_norm(s):
            del s["blocks.0.norm1.bias"]
        self.convert_fails(self.timm_file(rms_norm), "--heads", "2", contains=("RMSNorm", "blocks.0.norm1.weight"))

        def swiglu_packed(s):
            for i in range(DEPTH):
                s[f"blocks.{i}.mlp.fc2.weight"] = np.zeros((D, MLP // 2), np.float32)
        self.convert_fails(self.timm_file(swiglu_packed), "--heads", "2", contains=("SwiGLU",))

        def parallel(s):
            s["blocks.0.attns.0.norm.weight"] = np.ones(D, np.float32)
        self.convert_fails(self.timm_file(parallel), "--heads", "2", contains=("parallel blocks",))

    def test_pre_logits_and_pooler_are_refused(self):
        # Both add a layer (in21k pre-logits, HF pooler) that a plain ViT head does not have.
        t = make_canonical(seed=26)
        state = google_state(t, prefix="opt/target/")
        state["opt/target/pre_logits/kernel"] = np.zeros((D, D), np.float32)
        state["opt/target/pre_logits/bias"] = np.zeros(D, np.float32)
        np.savez(self.path("g.npz"), **state)
        self.convert_fails(self.path("g.npz"), "--config", self.hf_config_file(), contains=("pre_logits",))
        state = hf_state(t)
        state["vit.pooler.dense.weight"] = np.zeros((D, D), np.float32)
        state["vit.pooler.dense.bias"] = np.zeros(D, np.float32)
        write_safetensors(self.path("hf.safetensors"), state)
        self.convert_fails(self.path("hf.safetensors"), "--config", self.hf_config_file(),
                           contains=("vit.pooler.dense", "classifier"))

    def test_needs_arch_or_config(self):
        self.convert_fails(self.timm_file(), contains=("--arch", "--config", "heads", "dim=32"))

    def test_timm_squash_crop_mode(self):
        t = make_canonical(seed=11, image=384, patch=16)
        write_safetensors(self.path("m.safetensors"), timm_state(t))
        args = {"embed_dim": D, "depth": DEPTH, "num_heads": HEADS, "mlp_ratio": 4.0}
        config = timm_config("vit_small_patch16_384", **args)
        config["pretrained_cfg"].update({"crop_pct": 0.95, "crop_mode": "squash"})
        m = self.convert(self.path("m.safetensors"), "--config", self.write_json("s.json", config)).metadata
        # timm: Resize((floor(384 / 0.95),) * 2) = 404 x 404, aspect not kept, then CenterCrop(384).
        self.assertEqual((m["preprocess.resize"], m["preprocess.resize_size"]), ("squash_then_crop", 404))
        config["pretrained_cfg"].update({"crop_mode": "border"})
        self.convert_fails(self.path("m.safetensors"), "--config", self.write_json("b.json", config),
                           contains=("crop_mode='border'",))

    def test_arch_name_is_checked_against_the_tensors(self):
        self.convert_fails(self.timm_file(), "--arch", "vit_gigantic_patch14_224", "--heads", "2",
                           contains=("vit_gigantic_patch14_224", "patch_size=14", "patch_size=8"))
        # No size word: the heads must be given.
        self.convert_fails(self.timm_file(), "--arch", "vit_custom_patch8_32",
                           contains=("vit_custom_patch8_32", "size word", "--heads"))

    def test_size_word_contradicting_the_width_is_refused(self):
        # A ViT-Ti checkpoint (width 192, 3 heads) named as a ViT-B: 'base' would give it 12
        # heads of 16 and a model that runs, silently wrong.
        ckpt = self.timm_file(dim=192, heads=3, mlp=768, image=224, patch=16)
        self.convert_fails(ckpt, "--arch", "vit_base_patch16_224",
                           contains=("'base'", "768", "192", "--heads"))
        self.convert_fails(ckpt, "--arch", "deit_small_patch16_224", contains=("'small'", "384", "192"))
        # A name timm does not register: its size word alone.
        self.convert_fails(ckpt, "--arch", "vit_base_patch16_unregistered_224",
                           contains=("'base'", "768", "192", "--heads"))
        # --heads given explicitly: the user has said what the name cannot.
        m = self.convert(ckpt, "--arch", "vit_base_patch16_224", "--heads", "3").metadata
        self.assertEqual((m["arch.dim"], m["arch.heads"], m["arch.head_dim"]), (192, 3, 64))
        # The right name needs nothing more.
        m = self.convert(ckpt, "--arch", "vit_tiny_patch16_224").metadata
        self.assertEqual((m["arch.heads"], m["arch.head_dim"]), (3, 64))
        # Heads must divide the width, whoever states them.
        self.convert_fails(ckpt, "--arch", "vit_base_patch16_224", "--heads", "5",
                           contains=("192", "5 heads"))
        self.convert_fails(ckpt, "--heads", "7", contains=("192", "7 heads"))

    def test_pickle_with_arbitrary_globals_is_refused(self):
        import argparse
        import torch
        state = {k: torch.from_numpy(v) for k, v in timm_state(make_canonical(seed=25)).items()}
        torch.save({"model": state, "args": argparse.Namespace(lr=0.1)}, self.path("ns.pth"))
        self.convert_fails(self.path("ns.pth"), "--config", self.hf_config_file(),
                           contains=("refused", "argparse.Namespace"))
        # A pickle whose loading would run code: it must not run.
        marker = self.path("pwned")
        with open(self.path("evil.pth"), "wb") as f:
            pickle.dump({"x": _RunsCode(marker)}, f)
        self.convert_fails(self.path("evil.pth"), "--config", self.hf_config_file(), contains=("refused",))
        self.assertFalse(os.path.exists(marker))


# ----------------------------------------------------------------------------- seed models

def format_order(depth=DEPTH, qkv_bias=False, attn_proj=True, final_norm=False, head_norm=False,
                 head="linear", patch_norm=False):
    """FORMAT.md's tensor table with every optional part, transcribed."""
    names = ["patch_embed.weight", "patch_embed.bias"]
    if patch_norm:
        names += ["patch_embed.norm_in.weight", "patch_embed.norm_in.bias",
                  "patch_embed.norm_out.weight", "patch_embed.norm_out.bias"]
    names += ["prefix_tokens", "pos_embed"]
    for i in range(depth):
        block = ["norm1.weight", "norm1.bias", "attn.qkv.weight"]
        block += ["attn.qkv.bias"] if qkv_bias else []
        block += ["attn.proj.weight", "attn.proj.bias"] if attn_proj else []
        block += ["norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                  "mlp.fc2.weight", "mlp.fc2.bias"]
        names += [f"blocks.{i}.{s}" for s in block]
    names += ["norm.weight", "norm.bias"] if final_norm else []
    names += ["head_norm.weight", "head_norm.bias"] if head_norm else []
    names += ["head_hidden.weight", "head_hidden.bias"] if head == "mlp" else []
    names += ["head.weight", "head.bias"]
    return names


def make_seed_canonical(seed, dim=D, depth=DEPTH, inner=D, mlp=MLP, grid=GRID, patch=PATCH,
                        channels=C, classes=K, hidden=0, **parts):
    """Random canonical tensors for format_order(**parts); `hidden`: the MLP head's width."""
    rng = np.random.default_rng(seed)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    names = format_order(depth=depth, **parts)
    shapes = {"patch_embed.weight": (dim, channels, patch, patch), "patch_embed.bias": (dim,),
              "patch_embed.norm_in.weight": (channels * patch * patch,),
              "patch_embed.norm_in.bias": (channels * patch * patch,),
              "patch_embed.norm_out.weight": (dim,), "patch_embed.norm_out.bias": (dim,),
              "prefix_tokens": (1, dim), "pos_embed": (1 + grid, dim),
              "norm.weight": (dim,), "norm.bias": (dim,), "head_norm.weight": (dim,),
              "head_norm.bias": (dim,), "head_hidden.weight": (hidden, dim),
              "head_hidden.bias": (hidden,), "head.weight": (classes, hidden or dim),
              "head.bias": (classes,)}
    block = {"norm1.weight": (dim,), "norm1.bias": (dim,), "attn.qkv.weight": (3 * inner, dim),
             "attn.qkv.bias": (3 * inner,), "attn.proj.weight": (dim, inner),
             "attn.proj.bias": (dim,), "norm2.weight": (dim,), "norm2.bias": (dim,),
             "mlp.fc1.weight": (mlp, dim), "mlp.fc1.bias": (mlp,), "mlp.fc2.weight": (dim, mlp),
             "mlp.fc2.bias": (dim,)}
    for i in range(depth):
        shapes.update({f"blocks.{i}.{k}": v for k, v in block.items()})
    return {n: r(*shapes[n]) for n in names}


def linear_patch(conv):
    """Conv weight [D, C, P, P] → vit-pytorch's Linear [D, P·P·C], inputs in (p1 p2 c) order."""
    return np.ascontiguousarray(conv.transpose(0, 2, 3, 1).reshape(conv.shape[0], -1))


def pxc_vector(v, channels=C, patch=PATCH):
    """A (c, y, x)-ordered patch vector → (p1 p2 c) order."""
    return np.ascontiguousarray(v.reshape(channels, patch, patch).transpose(1, 2, 0).reshape(-1))


def seed_layers(t, depth, names, qkv):
    """t's blocks under transformer.layers.N.: names maps a canonical module to the
    seed's (a proj that t lacks is left out); qkv is the seed's bias-free to_qkv."""
    s = {}
    for i in range(depth):
        seed, b = f"transformer.layers.{i}.", f"blocks.{i}."
        for canonical, name in names.items():
            for part in ("weight", "bias"):
                if f"{b}{canonical}.{part}" in t:
                    s[f"{seed}{name}.{part}"] = t[f"{b}{canonical}.{part}"]
        s[f"{seed}{qkv}.weight"] = t[f"{b}attn.qkv.weight"]
    return s


def vitpytorch_state(t, depth=DEPTH):
    """lucidrains vit-pytorch ViT (seeds 001/002) names."""
    dim = t["patch_embed.weight"].shape[0]
    s = {"to_patch_embedding.1.weight": linear_patch(t["patch_embed.weight"]),
         "to_patch_embedding.1.bias": t["patch_embed.bias"],
         "cls_token": t["prefix_tokens"].reshape(1, 1, dim),
         "pos_embedding": t["pos_embed"][None],
         "mlp_head.0.weight": t["head_norm.weight"], "mlp_head.0.bias": t["head_norm.bias"],
         "mlp_head.1.weight": t["head.weight"], "mlp_head.1.bias": t["head.bias"]}
    s.update(seed_layers(t, depth, {"norm1": "0.norm", "attn.proj": "0.fn.to_out.0", "norm2": "1.norm",
                                    "mlp.fc1": "1.fn.net.0", "mlp.fc2": "1.fn.net.3"}, "0.fn.to_qkv"))
    return s


def vitpytorch2023_state(t, depth=DEPTH, flat_tokens=False):
    """seed 003 names; flat_tokens: cls_token [D] and pos_embedding [n + 1, D]."""
    dim = t["patch_embed.weight"].shape[0]
    s = {"to_patch_embedding.1.weight": pxc_vector(t["patch_embed.norm_in.weight"]),
         "to_patch_embedding.1.bias": pxc_vector(t["patch_embed.norm_in.bias"]),
         "to_patch_embedding.2.weight": linear_patch(t["patch_embed.weight"]),
         "to_patch_embedding.2.bias": t["patch_embed.bias"],
         "to_patch_embedding.3.weight": t["patch_embed.norm_out.weight"],
         "to_patch_embedding.3.bias": t["patch_embed.norm_out.bias"],
         "cls_token": t["prefix_tokens"].reshape(dim) if flat_tokens else t["prefix_tokens"][None],
         "pos_embedding": t["pos_embed"] if flat_tokens else t["pos_embed"][None],
         "transformer.norm.weight": t["norm.weight"], "transformer.norm.bias": t["norm.bias"],
         "mlp_head.weight": t["head.weight"], "mlp_head.bias": t["head.bias"]}
    s.update(seed_layers(t, depth, {"norm1": "0.norm", "attn.proj": "0.to_out.0", "norm2": "1.net.0",
                                    "mlp.fc1": "1.net.1", "mlp.fc2": "1.net.4"}, "0.to_qkv"))
    return s


def mnist_state(t, depth=DEPTH):
    """seed 004 names: Residual(PreNorm(...)) blocks, MLP head."""
    s = {"patch_to_embedding.weight": linear_patch(t["patch_embed.weight"]),
         "patch_to_embedding.bias": t["patch_embed.bias"],
         "cls_token": t["prefix_tokens"][None], "pos_embedding": t["pos_embed"][None],
         "mlp_head.0.weight": t["head_hidden.weight"], "mlp_head.0.bias": t["head_hidden.bias"],
         "mlp_head.2.weight": t["head.weight"], "mlp_head.2.bias": t["head.bias"]}
    s.update(seed_layers(t, depth, {"norm1": "0.fn.norm", "attn.proj": "0.fn.fn.to_out", "norm2": "1.fn.norm",
                                    "mlp.fc1": "1.fn.fn.net.0", "mlp.fc2": "1.fn.fn.net.2"}, "0.fn.fn.to_qkv"))
    return s


def flax_params(seed, embed=24, hidden=D, mlp=MLP, depth=DEPTH, classes=K, grid=GRID):
    """Random Flax seed parameters ('/'-joined tree), Dense kernels [in, out], conv HWIO."""
    rng = np.random.default_rng(seed)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    p = {"patches/conv/kernel": r(PATCH, PATCH, C, embed), "patches/conv/bias": r(embed),
         "patch_encoder/Dense_0/kernel": r(embed, hidden), "patch_encoder/Dense_0/bias": r(hidden),
         "patch_encoder/cls_token": r(1, 1, hidden),
         "patch_encoder/position_embedding": r(1, grid + 1, hidden),
         "head/kernel": r(hidden, classes), "head/bias": r(classes)}
    for i in range(depth):
        e = f"encoder_{i}/"
        p[e + "layer_norm/scale"], p[e + "layer_norm/bias"] = r(hidden), r(hidden)
        for n in ("q_net", "k_net", "v_net", "proj_net"):
            p[f"{e}mha/{n}/kernel"], p[f"{e}mha/{n}/bias"] = r(hidden, hidden), r(hidden)
        p[e + "mlp/Dense_0/kernel"], p[e + "mlp/Dense_0/bias"] = r(hidden, mlp), r(mlp)
        p[e + "mlp/Dense_1/kernel"], p[e + "mlp/Dense_1/bias"] = r(mlp, hidden), r(hidden)
    return p


VP_CONFIG = {"image_size": IMAGE, "patch_size": PATCH, "num_classes": K, "dim": D, "depth": DEPTH,
             "heads": HEADS, "mlp_dim": MLP, "dim_head": HEAD_DIM}
VP2023_CONFIG = {"image_size": IMAGE, "patch_size": PATCH, "num_classes": K, "dim": D,
                 "depth": DEPTH, "heads": HEADS, "mlp_dim_ratio": MLP // D, "dim_head": HEAD_DIM}
MNIST_CONFIG = {"image_size": 28, "patch_size": 7, "num_classes": K, "dim": D, "depth": DEPTH,
                "heads": 4, "mlp_dim": 48, "channels": 1}
FLAX_CONFIG = {"patch_size": PATCH, "embed_dim": 24, "hidden_dim": D, "n_heads": HEADS,
               "num_layers": DEPTH, "mlp_dim": MLP, "num_classes": K, "image_size": IMAGE,
               "channels": C, "drop_p": 0.1}


class SeedFamilies(ConvertTestCase):
    """The seed models: each layout's tensors come back exactly after the documented transforms."""

    def seed_file(self, state, name="seed.pt"):
        write_pth(self.path(name), state)
        return self.path(name)

    def config(self, base, **changes):
        data = dict(base)
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        return self.write_json("config.json", data)

    def test_vit_pytorch_cls(self):
        parts = dict(head_norm=True)
        t = make_seed_canonical(40, **parts)
        ovit = self.convert(self.seed_file(vitpytorch_state(t)), "--config", self.config(VP_CONFIG))
        self.assertTensorsEqual(ovit, t, format_order(**parts))
        expected = {
            "arch.family": "vit-pytorch", "arch.image_height": 32, "arch.image_width": 32,
            "arch.channels": 3, "arch.patch_size": 8, "arch.dim": 32, "arch.depth": 2,
            "arch.heads": 2, "arch.head_dim": 16, "arch.mlp_dim": 128, "arch.num_classes": 10,
            "arch.prefix_tokens": 1, "arch.norm_eps": f32(1e-5), "arch.gelu": "erf",
            "arch.attn_scale": 0.25, "arch.qkv_bias": 0, "arch.attn_proj": 1,
            "arch.final_norm": 0, "arch.pool": "token", "arch.head_norm": 1,
            "arch.head": "linear", "preprocess.resize": "direct", "preprocess.resize_size": 32,
            "preprocess.interpolation": "bilinear", "preprocess.mean": [0.5] * 3,
            "preprocess.std": [0.5] * 3}
        self.assertEqual(ovit.metadata, expected)   # no patch_norm / head_hidden keys either

    def test_vit_pytorch_patch_order_by_hand(self):
        # Linear input feature (y·P + x)·C + c  ←→  conv weight [d, c, y, x].
        t = make_seed_canonical(41, head_norm=True)
        state = vitpytorch_state(t)
        ovit = self.convert(self.seed_file(state), "--config", self.config(VP_CONFIG))
        d, c, y, x = 5, 2, 3, 6
        self.assertEqual(ovit.tensors["patch_embed.weight"][d, c, y, x],
                         state["to_patch_embedding.1.weight"][d, (y * PATCH + x) * C + c])

    def test_vit_pytorch_mean_pool_inner_dim_non_square(self):
        # heads·dim_head = 3·24 = 72 ≠ dim 32; 32x48 images: a 4x6 grid.
        parts = dict(head_norm=True)
        t = make_seed_canonical(42, inner=72, grid=24, **parts)
        config = self.config(VP_CONFIG, image_size=[32, 48], heads=3, dim_head=24, pool="mean")
        ovit = self.convert(self.seed_file(vitpytorch_state(t)), "--config", config)
        self.assertTensorsEqual(ovit, t, format_order(**parts))
        m = ovit.metadata
        self.assertEqual((m["arch.pool"], m["arch.heads"], m["arch.head_dim"], m["arch.image_height"],
                          m["arch.image_width"], m["arch.attn_scale"]),
                         ("mean", 3, 24, 32, 48, f32(24 ** -0.5)))

    def test_vit_pytorch_without_to_out(self):
        parts = dict(head_norm=True, attn_proj=False)
        t = make_seed_canonical(43, **parts)
        no_proj = self.config(VP_CONFIG, heads=1, dim_head=D)
        ovit = self.convert(self.seed_file(vitpytorch_state(t)), "--config", no_proj)
        self.assertTensorsEqual(ovit, t, format_order(**parts))
        self.assertEqual((ovit.metadata["arch.attn_proj"], ovit.metadata["arch.heads"]), (0, 1))
        # The config and the weights disagree about to_out, both ways.
        self.convert_fails(self.seed_file(vitpytorch_state(t)), "--config", self.config(VP_CONFIG),
                           contains=("heads=2", "lacks", "to_out.0.weight"))
        with_proj = make_seed_canonical(44, head_norm=True)
        no_proj = self.config(VP_CONFIG, heads=1, dim_head=D)    # config.json was rewritten
        self.convert_fails(self.seed_file(vitpytorch_state(with_proj)), "--config", no_proj,
                           contains=("heads=1", "dim_head=32", "has transformer.layers.0.0.fn.to_out"))

    def test_vit_pytorch_defaults_and_contradictions(self):
        t = make_seed_canonical(45, head_norm=True)
        ckpt = self.seed_file(vitpytorch_state(t))
        # dim_head defaults to 64, as in the constructor: 2 × 64 = 128 ≠ the 32 of to_qkv.
        self.convert_fails(ckpt, "--config", self.config(VP_CONFIG, dim_head=None),
                           contains=("heads×head_dim=128", "heads×head_dim=32", "to_qkv"))
        self.convert_fails(ckpt, "--config", self.config(VP_CONFIG, depth=3),
                           contains=("depth=3", "depth=2"))
        self.convert_fails(ckpt, "--config", self.config(VP_CONFIG, num_classes=7),
                           contains=("num_classes=7", "num_classes=10", "mlp_head.1.weight"))
        self.convert_fails(ckpt, "--config", self.config(VP_CONFIG, channels=1),
                           contains=("channels=1", "to_patch_embedding.1.weight", "patch_dim=192"))
        self.convert_fails(ckpt, "--config", self.config(VP_CONFIG, image_size=64),
                           contains=("65 position tokens", "17"))
        self.convert_fails(ckpt, "--config", self.config(VP_CONFIG, pool="max"),
                           contains=("pool", "'max'"))
        self.convert_fails(ckpt, "--config", self.config(VP_CONFIG, heads=None),
                           contains=("needs heads",))
        # An argument of another seed's constructor: named, with the family it belongs to.
        self.convert_fails(ckpt, "--config", self.config(VP_CONFIG, mlp_dim=None, mlp_dim_ratio=4),
                           contains=("mlp_dim_ratio", "vit-pytorch-2023", "vit-pytorch model"))
        # Dropout rates are training-only: accepted.
        self.convert(ckpt, "--config", self.config(VP_CONFIG, dropout=0.1, emb_dropout=0.1))

    def test_vit_pytorch_2023(self):
        parts = dict(patch_norm=True, final_norm=True)
        t = make_seed_canonical(46, **parts)
        ovit = self.convert(self.seed_file(vitpytorch2023_state(t)), "--config",
                            self.config(VP2023_CONFIG))
        self.assertTensorsEqual(ovit, t, format_order(**parts))
        m = ovit.metadata
        self.assertEqual((m["arch.family"], m["arch.patch_norm"], m["arch.final_norm"],
                          m["arch.head_norm"], m["arch.mlp_dim"], m["arch.norm_eps"]),
                         ("vit-pytorch-2023", 1, 1, 0, 128, f32(1e-5)))
        # Class token [D] and position embedding [n + 1, D] are accepted too.
        ovit = self.convert(self.seed_file(vitpytorch2023_state(t, flat_tokens=True)), "--config",
                            self.config(VP2023_CONFIG))
        self.assertTensorsEqual(ovit, t, format_order(**parts))

    def test_vit_pytorch_2023_refusals(self):
        parts = dict(patch_norm=True, final_norm=True)
        t = make_seed_canonical(47, **parts)
        ckpt = self.seed_file(vitpytorch2023_state(t))
        ovit = self.convert(ckpt, "--config", self.config(VP2023_CONFIG, pool="mean"))
        self.assertEqual(ovit.metadata["arch.pool"], "mean_patches")  # feature_map.mean: no class token
        self.convert_fails(ckpt, "--config", self.config(VP2023_CONFIG, mlp_dim_ratio=2),
                           contains=("mlp_dim=64", "mlp_dim=128"))
        self.convert_fails(ckpt, "--config", self.config(VP2023_CONFIG, mlp_dim_ratio=None,
                                                         mlp_dim=128),
                           contains=("mlp_dim", "vit-pytorch-2023 model", "mnist-vit / vit-pytorch"))
        state = vitpytorch2023_state(t)
        del state["transformer.norm.bias"]
        state["transformer.layers.1.1.net.7.weight"] = np.zeros(3, np.float32)
        self.convert_fails(self.seed_file(state), "--config", self.config(VP2023_CONFIG),
                           contains=("missing 1", "transformer.norm.bias", "unexpected 1",
                                     "transformer.layers.1.1.net.7.weight"))

    def test_mnist(self):
        parts = dict(head="mlp")
        t = make_seed_canonical(48, inner=D, mlp=48, grid=16, patch=7, channels=1, hidden=48, **parts)
        ovit = self.convert(self.seed_file(mnist_state(t)), "--config", self.config(MNIST_CONFIG))
        self.assertTensorsEqual(ovit, t, format_order(**parts))
        m = ovit.metadata
        self.assertEqual((m["arch.family"], m["arch.head"], m["arch.head_hidden"], m["arch.channels"],
                          m["arch.heads"], m["arch.head_dim"], m["arch.final_norm"],
                          m["arch.head_norm"], m["arch.qkv_bias"], m["preprocess.mean"]),
                         ("mnist-vit", "mlp", 48, 1, 4, 8, 0, 0, 0, [0.5]))
        # Scores scaled by dim ** -0.5 (the model width), not head_dim ** -0.5.
        self.assertEqual(m["arch.attn_scale"], f32(D ** -0.5))
        self.assertNotIn("arch.patch_norm", m)
        state = mnist_state(t)
        del state["mlp_head.2.bias"]
        self.convert_fails(self.seed_file(state), "--config", self.config(MNIST_CONFIG),
                           contains=("mnist-vit", "mlp_head.2.bias"))
        self.convert_fails(self.seed_file(mnist_state(t)), "--config",
                           self.config(MNIST_CONFIG, dim_head=8), contains=("dim_head", "mnist-vit"))
        self.convert_fails(self.seed_file(mnist_state(t)), "--config",
                           self.config(MNIST_CONFIG, heads=5), contains=("multiple of heads",))

    def flax_expected(self, p, prefix=""):
        """The canonical tensors the Flax parameters map to, computed here in float64."""
        f64 = {k: v.astype(np.float64) for k, v in p.items()}
        conv = f64["patches/conv/kernel"]                    # [P, P, C, E]
        dense = f64["patch_encoder/Dense_0/kernel"]          # [E, Hd]
        # out_h = Σ_e dense[e, h] (Σ_{y,x,c} img[c, y, x] conv[y, x, c, e] + b_e) + db_h
        weight = np.tensordot(conv, dense, axes=([3], [0])).transpose(3, 2, 0, 1)   # [Hd, C, P, P]
        t = {"patch_embed.weight": weight.astype(np.float32),
             "patch_embed.bias": (f64["patches/conv/bias"] @ dense +
                                  f64["patch_encoder/Dense_0/bias"]).astype(np.float32),
             "prefix_tokens": p["patch_encoder/cls_token"][0],
             "pos_embed": p["patch_encoder/position_embedding"][0],
             "head.weight": p["head/kernel"].T, "head.bias": p["head/bias"]}
        for i in range(DEPTH):
            e, b = f"encoder_{i}/", f"blocks.{i}."
            t[b + "norm1.weight"] = t[b + "norm2.weight"] = p[e + "layer_norm/scale"]
            t[b + "norm1.bias"] = t[b + "norm2.bias"] = p[e + "layer_norm/bias"]
            t[b + "attn.qkv.weight"] = np.concatenate(
                [p[f"{e}mha/{n}/kernel"].T for n in ("q_net", "k_net", "v_net")])
            t[b + "attn.qkv.bias"] = np.concatenate(
                [p[f"{e}mha/{n}/bias"] for n in ("q_net", "k_net", "v_net")])
            t[b + "attn.proj.weight"] = p[e + "mha/proj_net/kernel"].T
            t[b + "attn.proj.bias"] = p[e + "mha/proj_net/bias"]
            t[b + "mlp.fc1.weight"] = p[e + "mlp/Dense_0/kernel"].T
            t[b + "mlp.fc1.bias"] = p[e + "mlp/Dense_0/bias"]
            t[b + "mlp.fc2.weight"] = p[e + "mlp/Dense_1/kernel"].T
            t[b + "mlp.fc2.bias"] = p[e + "mlp/Dense_1/bias"]
        return t

    def assertFlaxTensors(self, ovit, p):
        expected = self.flax_expected(p)
        self.assertEqual(ovit.order, format_order(qkv_bias=True))
        for name in ovit.order:
            if name.startswith("patch_embed."):   # folded: float64 sums in another order
                np.testing.assert_allclose(ovit.tensors[name], expected[name], rtol=1e-6,
                                           atol=1e-5, err_msg=name)
            else:
                self.assertTrue(np.array_equal(ovit.tensors[name], expected[name]), name)

    def test_flax_seed(self):
        p = flax_params(49)
        np.savez(self.path("flax.npz"), **p)
        ovit = self.convert(self.path("flax.npz"), "--config", self.config(FLAX_CONFIG))
        self.assertFlaxTensors(ovit, p)
        m = ovit.metadata
        self.assertEqual((m["arch.family"], m["arch.dim"], m["arch.heads"], m["arch.head_dim"],
                          m["arch.gelu"], m["arch.norm_eps"], m["arch.final_norm"],
                          m["arch.qkv_bias"], m["arch.attn_proj"], m["arch.attn_scale"]),
                         ("flax-seed", D, HEADS, HEAD_DIM, "tanh", f32(1e-6), 0, 1, 1, 0.25))
        # A 'params/' root, and image_size / channels read off the weights when not given.
        np.savez(self.path("flax_params.npz"), **{"params/" + k: v for k, v in p.items()})
        ovit = self.convert(self.path("flax_params.npz"), "--config",
                            self.config(FLAX_CONFIG, image_size=None, channels=None))
        self.assertFlaxTensors(ovit, p)
        self.assertEqual((ovit.metadata["arch.image_height"], ovit.metadata["arch.channels"]), (32, 3))

    def test_flax_seed_refusals(self):
        p = flax_params(50)
        np.savez(self.path("flax.npz"), **p)
        ckpt = self.path("flax.npz")
        self.convert_fails(ckpt, "--config", self.config(FLAX_CONFIG, embed_dim=32),
                           contains=("embed_dim=32", "embed_dim=24", "patches/conv/kernel"))
        self.convert_fails(ckpt, "--config", self.config(FLAX_CONFIG, n_heads=3),
                           contains=("hidden_dim 32", "n_heads 3"))
        self.convert_fails(ckpt, "--config", self.config(FLAX_CONFIG, hidden_dim=64),
                           contains=("dim=64", "dim=32"))
        self.convert_fails(ckpt, "--config", self.config(FLAX_CONFIG, num_layers=None),
                           contains=("needs num_layers",))
        broken = dict(p)
        del broken["encoder_1/mha/v_net/bias"]
        np.savez(self.path("broken.npz"), **broken)
        self.convert_fails(self.path("broken.npz"), "--config", self.config(FLAX_CONFIG),
                           contains=("flax-seed", "encoder_1/mha/v_net/bias"))

    def test_config_family_mismatches(self):
        t = make_seed_canonical(51, head_norm=True)
        ckpt = self.seed_file(vitpytorch_state(t))
        # A seed checkpoint needs the constructor arguments.
        self.convert_fails(ckpt, contains=("vit-pytorch", "--config", "dim_head=64"))
        self.convert_fails(ckpt, "--arch", "vit_tiny_patch16_224",
                           contains=("vit-pytorch", "--arch vit_tiny_patch16_224"))
        self.convert_fails(ckpt, "--config", self.hf_config_file(), contains=("vit-pytorch",))
        # Constructor arguments with a timm checkpoint.
        write_safetensors(self.path("timm.safetensors"), timm_state(make_canonical(seed=52)))
        self.convert_fails(self.path("timm.safetensors"), "--config", self.config(VP_CONFIG),
                           contains=("constructor arguments", "timm"))
        # The Flax constructor's arguments with a vit-pytorch checkpoint.
        self.convert_fails(ckpt, "--config", self.config(FLAX_CONFIG),
                           contains=("embed_dim", "flax-seed"))

    def test_preprocess_and_labels_in_config(self):
        t = make_seed_canonical(53, head_norm=True)
        ckpt = self.seed_file(vitpytorch_state(t))
        labels = [f"digit {i}" for i in range(K)]
        config = self.config(VP_CONFIG, labels=labels, preprocess={
            "resize": "shorter_then_crop", "resize_size": 36, "interpolation": "bicubic",
            "mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]})
        m = self.convert(ckpt, "--config", config).metadata
        self.assertEqual((m["preprocess.resize"], m["preprocess.resize_size"],
                          m["preprocess.interpolation"], m["labels"]),
                         ("shorter_then_crop", 36, "bicubic", labels))
        self.assertEqual(m["preprocess.std"], [f32(0.4), f32(0.5), f32(0.6)])
        for bad, text in (({"resize": "squash"}, "preprocess.resize"),
                          ({"mean": [0.5]}, "preprocess.mean"),
                          ({"resize": "shorter_then_crop"}, "resize_size"),
                          ({"resize": "shorter_then_crop", "resize_size": 16}, "smaller than"),
                          ({"crop_pct": 0.9}, "preprocess.crop_pct")):
            self.convert_fails(ckpt, "--config", self.config(VP_CONFIG, preprocess=bad),
                               contains=(text,))
        self.convert_fails(ckpt, "--config", self.config(VP_CONFIG, labels=["a", "b"]),
                           contains=("2 labels", "10 classes"))


class ImageSize(ConvertTestCase):
    """--image-size: the position grid resampled as PyTorch's bicubic F.interpolate does."""

    def test_resampling_matrices_match_torch(self):
        import torch
        import torch.nn.functional as F
        from onevit_convert.posembed import resample_grid
        rng = np.random.default_rng(60)
        for (gh, gw), (nh, nw) in (((14, 14), (24, 24)), ((14, 14), (14, 20)), ((4, 4), (9, 6)),
                                   ((24, 24), (14, 14)), ((7, 5), (3, 11)), ((2, 2), (2, 2))):
            grid = rng.standard_normal((gh, gw, 5))
            x = torch.from_numpy(grid.transpose(2, 0, 1)[None].copy())
            for mode, antialias in (("bicubic", False), ("bicubic-antialias", True)):
                want = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False,
                                     antialias=antialias)[0].numpy().transpose(1, 2, 0)
                got = resample_grid(grid, (nh, nw), mode)
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-12,
                                           err_msg=f"{mode} {gh}x{gw} -> {nh}x{nw}")

    def timm_file(self, seed=61, distilled=False):
        t = make_canonical(seed=seed, distilled=distilled)
        write_safetensors(self.path("m.safetensors"), timm_state(t))
        return t, self.path("m.safetensors")

    def test_pos_embed_resampled_and_recipe_scaled(self):
        import torch
        import torch.nn.functional as F
        t, ckpt = self.timm_file(distilled=True)
        config = self.write_json("config.json",
                                 timm_config("deit_tiny_distilled_patch16_224", **TINY_TIMM_ARGS))
        ovit = self.convert(ckpt, "--config", config, "--image-size", "48x64")
        m = ovit.metadata
        self.assertEqual((m["arch.image_height"], m["arch.image_width"]), (48, 64))
        pos = ovit.tensors["pos_embed"]
        self.assertEqual(pos.shape, (2 + 6 * 8, D))
        self.assertTrue(np.array_equal(pos[:2], t["pos_embed"][:2]))    # prefix rows kept
        grid = torch.from_numpy(t["pos_embed"][2:].astype(np.float64)).reshape(1, 4, 4, D)
        want = F.interpolate(grid.permute(0, 3, 1, 2), size=(6, 8), mode="bicubic",
                             align_corners=False)[0].permute(1, 2, 0).reshape(48, D).numpy()
        np.testing.assert_allclose(pos[2:], want, rtol=1e-6, atol=1e-6)
        # Everything else is untouched.
        for name in ovit.order:
            if name != "pos_embed":
                self.assertTrue(np.array_equal(ovit.tensors[name], t[name]), name)
        # DeiT at 32: shorter side to 36 (= floor(32 / 0.875)), crop 32. At 48x64 the crop
        # fraction is kept on the longer side: floor(64 · 36 / 32) = 72.
        self.assertEqual((m["preprocess.resize"], m["preprocess.resize_size"]), ("shorter_then_crop", 72))

    def test_direct_recipe_and_identity(self):
        t, ckpt = self.timm_file()
        m = self.convert(ckpt, "--config", self.hf_config_file(), "--image-size", "40").metadata
        self.assertEqual((m["arch.image_height"], m["arch.image_width"], m["preprocess.resize"],
                          m["preprocess.resize_size"]), (40, 40, "direct", 40))
        ovit = self.convert(ckpt, "--config", self.hf_config_file(), "--image-size", "32x32")
        self.assertTensorsEqual(ovit, t, canonical_order())

    def test_seed_model_resized(self):
        parts = dict(patch_norm=True, final_norm=True)
        t = make_seed_canonical(62, **parts)
        write_pth(self.path("s.pt"), vitpytorch2023_state(t))
        ovit = self.convert(self.path("s.pt"), "--config", self.write_json("config.json", VP2023_CONFIG),
                            "--image-size", "48x64", "--pos-resample", "bicubic-antialias")
        self.assertEqual(ovit.tensors["pos_embed"].shape, (1 + 48, D))
        self.assertEqual(ovit.metadata["arch.patch_norm"], 1)

    def test_errors(self):
        _, ckpt = self.timm_file()
        config = self.hf_config_file()
        self.convert_fails(ckpt, "--config", config, "--image-size", "36", contains=("36x36", "patch size 8"))
        self.convert_fails(ckpt, "--config", config, "--image-size", "big", contains=("HxW",))
        self.convert_fails(ckpt, "--config", config, "--image-size", "48", "--pos-resample", "lanczos",
                           contains=("lanczos",))


class Ergonomics(ConvertTestCase):
    """Issue 25 item 13: a hub folder as INPUT, and files that are not checkpoints named as such."""

    def hub_folder(self, name="hub", preprocessor=True):
        folder = self.path(name)
        os.makedirs(folder)
        t = make_canonical(seed=80)
        write_safetensors(os.path.join(folder, "model.safetensors"), hf_state(t))
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(hf_config(), f)
        if preprocessor:
            with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
                json.dump({"do_resize": True, "size": {"height": IMAGE, "width": IMAGE}, "resample": 3,
                           "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}, f)
        return folder, t

    def test_hub_folder_reads_weights_config_and_preprocessor(self):
        folder, t = self.hub_folder()
        ovit = self.convert(folder, output="folder.ovit")
        self.assertTensorsEqual(ovit, t, canonical_order())
        # The same as naming both files.
        files = self.convert(os.path.join(folder, "model.safetensors"), "--config",
                             os.path.join(folder, "config.json"), output="files.ovit")
        self.assertEqual(ovit.metadata, files.metadata)
        self.assertEqual(ovit.metadata["preprocess.interpolation"], "bicubic")  # resample 3
        self.assertEqual(ovit.metadata["labels"], [f"class {i}" for i in range(K)])

    def test_hub_folder_with_sharded_safetensors(self):
        folder, t = self.hub_folder(preprocessor=False)
        state = hf_state(t)
        os.remove(os.path.join(folder, "model.safetensors"))
        names = sorted(state)
        shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
        for shard, keys in shards.items():
            write_safetensors(os.path.join(folder, shard), {k: state[k] for k in keys})
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}, f)
        self.assertTensorsEqual(self.convert(folder), t, canonical_order())
        os.remove(os.path.join(folder, "model-00002-of-00002.safetensors"))
        self.convert_fails(folder, contains=("model-00002-of-00002.safetensors", "missing"))

    def test_folder_without_weights_and_arch_over_folder_config(self):
        os.makedirs(self.path("empty"))
        self.convert_fails(self.path("empty"), contains=("empty", "model.safetensors", "without a checkpoint"))
        folder, _ = self.hub_folder(preprocessor=False)
        # --arch instead of the folder's config.json: the HF checkpoint is described by the name.
        self.convert_fails(folder, "--arch", "vit_base_patch16_224", contains=("vit_base_patch16_224",))

    def test_files_that_are_not_checkpoints_are_called_what_they_are(self):
        import torch
        cases = {
            "lfs.pth": (b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 1\n", "Git LFS pointer"),
            "page.bin": (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML page"),
            "array.pth": (None, "single .npy array"),
            "text.pth": (b"these are not weights\n", "not a PyTorch checkpoint"),
            "empty.pt": (b"", "empty file"),
        }
        for name, (data, what) in cases.items():
            with self.subTest(name=name):
                if data is None:
                    np.save(self.path(name + ".npy"), np.zeros(3, np.float32))
                    os.replace(self.path(name + ".npy"), self.path(name))
                else:
                    with open(self.path(name), "wb") as f:
                        f.write(data)
                self.convert_fails(self.path(name), "--arch", "vit_tiny_patch16_224", contains=(name, what))
        script = torch.jit.script(torch.nn.Linear(2, 2))
        torch.jit.save(script, self.path("scripted.pth"))
        self.convert_fails(self.path("scripted.pth"), "--arch", "vit_tiny_patch16_224",
                           contains=("TorchScript", "state_dict"))

    def test_safetensors_named_pth_is_read_as_safetensors(self):
        t = make_canonical(seed=81)
        write_safetensors(self.path("really_safetensors.pth"), timm_state(t))
        self.assertTensorsEqual(self.convert(self.path("really_safetensors.pth"), "--heads", str(HEADS)), t,
                                canonical_order())


class OptionalKeys(unittest.TestCase):
    def test_reader_defaults_and_requirements(self):
        from onevit_convert.ovit_reader import FormatError, OvitFile, architecture
        from onevit_convert.metadata import ARCH_KEYS, PREPROCESS_KEYS
        meta, types = {}, {}
        values = {"family": "x", "gelu": "erf", "pool": "token", "head": "linear"}
        for key, kind, field in ARCH_KEYS + PREPROCESS_KEYS:
            meta[key] = values.get(field, "direct" if kind == 2 else [0.5] if kind == 3 else 1)
            types[key] = kind
        ovit = OvitFile(1, 64, meta, types, {}, {}, [])
        arch = architecture(ovit)
        self.assertEqual((arch.patch_norm, arch.head_hidden), (False, 0))
        meta["arch.head"] = "mlp"
        with self.assertRaises(FormatError):
            architecture(ovit)             # mlp head without arch.head_hidden
        meta["arch.head_hidden"], types["arch.head_hidden"] = 7, 0
        meta["arch.patch_norm"], types["arch.patch_norm"] = 1, 0
        arch = architecture(ovit)
        self.assertEqual((arch.head, arch.head_hidden, arch.patch_norm), ("mlp", 7, True))


class _RunsCode:
    """Unpickling this would create a file: what a malicious checkpoint could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@unittest.skipUnless(os.path.exists(DEIT), "shared DeiT-tiny checkpoint not present")
class RealDeitTiny(ConvertTestCase):
    def test_convert_deit_tiny(self):
        ovit = self.convert(DEIT, "--arch", "deit_tiny_patch16_224", "--labels", IMAGENET_LABELS)
        m = ovit.metadata
        self.assertEqual((m["arch.dim"], m["arch.depth"], m["arch.heads"], m["arch.num_classes"]),
                         (192, 12, 3, 1000))
        self.assertEqual((m["preprocess.resize"], m["preprocess.resize_size"], m["preprocess.interpolation"]),
                         ("shorter_then_crop", 256, "bicubic"))
        self.assertEqual((len(m["labels"]), m["labels"][0], m["labels"][999]),
                         (1000, "tench", "toilet tissue"))
        self.assertEqual(sum(a.size for a in ovit.tensors.values()), 5717416)
        # Same values as the safetensors file, read here independently.
        with open(DEIT, "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])

        def stored(name):
            begin, end = header[name]["data_offsets"]
            return np.frombuffer(raw[8 + n + begin:8 + n + end], "<f4").reshape(header[name]["shape"])
        self.assertTrue(np.array_equal(ovit.tensors["prefix_tokens"], stored("cls_token").reshape(1, 192)))
        self.assertTrue(np.array_equal(ovit.tensors["blocks.11.attn.qkv.weight"],
                                       stored("blocks.11.attn.qkv.weight")))
        self.assertTrue(np.array_equal(ovit.tensors["patch_embed.weight"], stored("patch_embed.proj.weight")))



class StoredDTypes(ConvertTestCase):
    """--dtype bf16|int8: linear weights stored reduced (FORMAT.md, "Tensor data types"), the
    rest f32 and bit-identical. Checked on the raw bytes against the format's rules as
    properties (nearest bf16; int8 scale = max|row|/127, within half a step, ±127 reached),
    not against the converter's own quantizer."""

    LINEAR = [f"blocks.{i}.{s}.weight" for i in range(DEPTH)
              for s in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")] + ["head.weight"]

    def converted(self, dtype, t):
        write_safetensors(self.path("m.safetensors"), timm_state(t))
        ovit = self.convert(self.path("m.safetensors"), "--config", self.hf_config_file(),
                            "--dtype", dtype, output=f"{dtype}.ovit")
        with open(self.path(f"{dtype}.ovit"), "rb") as f:
            data = f.read()
        return ovit, data

    def raw(self, ovit, data, name, dtype, count):
        return np.frombuffer(data, dtype, count=count, offset=ovit.data_offset + ovit.offsets[name])

    def check_other_tensors_are_f32(self, ovit, t):
        for name in canonical_order():
            if name not in self.LINEAR:
                self.assertEqual(ovit.dtypes[name], 0, name)
                self.assertTrue(np.array_equal(ovit.tensors[name], t[name]), name)

    def test_bf16_is_the_nearest_bf16(self):
        t = make_canonical(seed=40)
        ovit, data = self.converted("bf16", t)
        self.check_other_tensors_are_f32(ovit, t)
        for name in self.LINEAR:
            self.assertEqual(ovit.dtypes[name], 1, name)
            w = t[name].astype(np.float64)
            upper = self.raw(ovit, data, name, "<u2", w.size).astype(np.uint32)
            got = (upper << 16).view(np.float32).reshape(w.shape).astype(np.float64)
            self.assertTrue(np.array_equal(got, ovit.tensors[name]), name)
            # No other bf16 is closer: the neighbours one step either side are not.
            for step in (-1, 1):
                neighbour = ((upper.astype(np.int64) + step).astype(np.uint32) << 16).view(np.float32)
                neighbour = neighbour.reshape(w.shape).astype(np.float64)
                self.assertTrue(np.all(np.abs(got - w) <= np.abs(neighbour - w)), name)

    def test_int8_is_symmetric_per_output_channel(self):
        t = make_canonical(seed=41)
        t["head.weight"][3] = 0.0  # an all-zero row: scale 0, values 0
        ovit, data = self.converted("int8", t)
        self.check_other_tensors_are_f32(ovit, t)
        for name in self.LINEAR:
            self.assertEqual(ovit.dtypes[name], 2, name)
            w = t[name]
            rows, columns = w.shape
            q = self.raw(ovit, data, name, np.int8, w.size).reshape(w.shape)
            padded = (w.size + 63) // 64 * 64
            scales = np.frombuffer(data, "<f4", count=rows,
                                   offset=ovit.data_offset + ovit.offsets[name] + padded)
            expected_scales = (np.abs(w).max(axis=1) / np.float32(127)).astype(np.float32)
            self.assertTrue(np.array_equal(scales, expected_scales), name)
            widened = q.astype(np.float64) * scales.astype(np.float64)[:, None]
            self.assertTrue(np.allclose(ovit.tensors[name], widened, rtol=1e-6, atol=0), name)
            half_step = scales.astype(np.float64)[:, None] / 2 * (1 + 1e-5)
            self.assertTrue(np.all(np.abs(widened - w) <= half_step), name)
            live = scales > 0
            self.assertTrue(np.all(np.abs(q[live]).max(axis=1) == 127), name)
            self.assertTrue(np.all(q[~live] == 0), name)
            self.assertGreaterEqual(int(q.min()), -127, name)
        self.assertEqual(float(scales[3]), 0.0)  # the head's all-zero row (head.weight is last)

    def test_file_sizes(self):
        t = make_canonical(seed=42)
        sizes = {}
        for dtype in ("f32", "bf16", "int8"):
            self.converted(dtype, t)
            sizes[dtype] = os.path.getsize(self.path(f"{dtype}.ovit"))
        linear = sum(t[n].size for n in self.LINEAR)
        # Linear weights shrink by 2 and 3 bytes per value; int8 adds its scales and padding.
        self.assertLessEqual(sizes["f32"] - sizes["bf16"], 2 * linear)
        self.assertGreater(sizes["f32"] - sizes["bf16"], 2 * linear - 64 * len(self.LINEAR))
        self.assertLess(sizes["int8"], sizes["bf16"])

    def test_unknown_dtype_is_one_error_line(self):
        write_safetensors(self.path("m.safetensors"), timm_state(make_canonical(seed=43)))
        self.convert_fails(self.path("m.safetensors"), "--config", self.hf_config_file(),
                           "--dtype", "f16", contains=("--dtype", "f16"))


if __name__ == "__main__":
    unittest.main()
