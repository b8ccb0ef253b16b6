"""The Python module `onevit` against the onevit program and the preprocess_dump tool.

Run by ctest (tests/CMakeLists.txt), which sets PYTHONPATH to the package staged
in the build tree and ONEVIT_BIN / ONEVIT_PREPROCESS_DUMP to the two programs:

    PYTHONPATH=build/engine/python ONEVIT_BIN=build/apps/onevit \
    ONEVIT_PREPROCESS_DUMP=build/tests/preprocess_dump \
        /usr/bin/python3 -m unittest discover -s tests/python_module

Uses the bundled digits model and samples, and the DeiT-tiny of ../shared/data
(converted here) where that data is present.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "reference"))
from harness import TOOL_ENV  # noqa: E402  (before numpy: OMP_WAIT_POLICY)

import numpy as np  # noqa: E402

import onevit  # noqa: E402

DIGITS = REPO / "weights" / "digits_vit.ovit"
SAMPLES = sorted((REPO / "weights" / "samples").glob("*.png"))
DATA = Path(os.environ.get("ONEVIT_DATA", REPO.parent / "shared" / "data"))
DEIT: Path | None = None  # the converted DeiT-tiny (setUpModule)


def setUpModule():
    global DEIT
    directory = tempfile.TemporaryDirectory(prefix="onevit_py_deit_")
    unittest.addModuleCleanup(directory.cleanup)
    DEIT = convert_deit_tiny(Path(directory.name))


def convert_deit_tiny(tmp: Path) -> Path | None:
    """The DeiT-tiny of ../shared/data as an .ovit file in tmp, as README shows; None without the data."""
    checkpoint = DATA / "deit_tiny_patch16_224" / "model.safetensors"
    if not checkpoint.is_file():
        return None
    converted = tmp / "deit_tiny.ovit"
    run_tool(sys.executable, REPO / "weights" / "convert.py", checkpoint, "--arch", "deit_tiny_patch16_224",
             "--labels", DATA / "labels" / "imagenet_classes.txt", "-o", converted)
    return converted


def require_deit(test: unittest.TestCase) -> Path:
    if DEIT is None:
        test.skipTest(f"no DeiT-tiny checkpoint under {DATA}")
    return DEIT


def run_tool(*args) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=TOOL_ENV, timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"{args} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def onevit_bin() -> str:
    return os.environ.get("ONEVIT_BIN", str(REPO / "build" / "apps" / "onevit"))


def infer(model: Path, x: np.ndarray, tmp: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`onevit infer`'s logits, class token and patch tokens for x."""
    np.save(tmp / "x.npy", x)
    run_tool(onevit_bin(), "infer", "--model", model, "--input", tmp / "x.npy", "--output", tmp / "logits.npy",
             "--cls", tmp / "cls.npy", "--tokens", tmp / "tokens.npy")
    return tuple(np.load(tmp / name) for name in ("logits.npy", "cls.npy", "tokens.npy"))


def random_input(model: onevit.Model, batch: int, seed: int) -> np.ndarray:
    arch = model.info["architecture"]
    shape = (batch, arch["channels"], arch["image_height"], arch["image_width"])
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class Scratch(unittest.TestCase):
    def setUp(self):
        directory = tempfile.TemporaryDirectory(prefix="onevit_py_")
        self.addCleanup(directory.cleanup)
        self.tmp = Path(directory.name)


class RunEqualsInfer(Scratch):
    """Model.run and Model.features give onevit infer's outputs bit for bit."""

    def check(self, path: Path):
        model = onevit.Model(path)
        x = random_input(model, 3, seed=1)
        logits, cls, tokens = infer(path, x, self.tmp)
        np.testing.assert_array_equal(model.run(x), logits)
        got_cls, got_tokens = model.features(x)
        np.testing.assert_array_equal(got_cls, cls)
        np.testing.assert_array_equal(got_tokens, tokens)
        self.assertEqual(model.run(x).shape, (3, model.info["architecture"]["num_classes"]))

    def test_digits(self):
        self.check(DIGITS)

    def test_deit_tiny(self):
        self.check(require_deit(self))


class EmbedEqualsInfer(Scratch):
    """Model.embed gives onevit infer's --embedding bit for bit."""

    def test_digits(self):
        model = onevit.Model(DIGITS)
        x = random_input(model, 3, seed=2)
        np.save(self.tmp / "x.npy", x)
        run_tool(onevit_bin(), "infer", "--model", DIGITS, "--input", self.tmp / "x.npy",
                 "--embedding", self.tmp / "embedding.npy")
        got = model.embed(x)
        self.assertEqual(got.shape, (3, model.info["architecture"]["dim"]))
        np.testing.assert_array_equal(got, np.load(self.tmp / "embedding.npy"))


class ArchitectureInfo(Scratch):
    """info["architecture"] holds every arch.* entry of the file, as the converter's own reader reads it."""

    def check(self, path):
        sys.path.insert(0, str(REPO / "weights"))
        from onevit_convert.ovit_reader import read_ovit
        arch = onevit.Model(str(path)).info["architecture"]
        for key, value in read_ovit(str(path)).metadata.items():
            if not key.startswith("arch."):
                continue
            name = key[len("arch."):]
            with self.subTest(path=path.name, key=name):
                self.assertIn(name, arch)
                got = arch[name]
                if isinstance(value, float):
                    self.assertEqual(np.float32(got), np.float32(value))
                elif isinstance(value, int):
                    self.assertEqual(int(got), value)
                else:
                    self.assertEqual(got, value)

    def test_digits(self):
        self.check(DIGITS)

    def test_version_2_features(self):
        for variant in ("pe-core-pool-heads", "rope-mixed", "relpos-shared"):
            fixture = REPO / "tests" / "fixtures" / "modern" / variant
            path = self.tmp / f"{variant}.ovit"
            run_tool(sys.executable, REPO / "weights" / "convert.py", fixture / "model.safetensors",
                     "--config", fixture / "config.json", "-o", path)
            self.check(path)


class Precision(unittest.TestCase):
    def test_unset_is_the_files_and_auto_is_accepted(self):
        """precision=None runs the file's stored precision; every name the CLI takes, auto included, loads."""
        model = onevit.Model(DIGITS)
        self.assertEqual(model.info["stored_precision"], "f32")
        self.assertEqual(model.precision, "f32")
        x = random_input(model, 1, seed=4)
        for name in ("f32", "bf16", "int8"):
            self.assertEqual(onevit.Model(DIGITS, precision=name).precision, name)
        auto = onevit.Model(DIGITS, precision="auto")
        self.assertIn(auto.precision, ("f32", "int8"))
        np.testing.assert_array_equal(auto.run(x), onevit.Model(DIGITS, precision=auto.precision).run(x))


class Concurrency(unittest.TestCase):
    def test_threads_share_one_model(self):
        """Eight Python threads call one two-stream model at once; each gets its own input's logits."""
        model = onevit.Model(DIGITS, threads=2, hint="throughput")
        inputs = [random_input(model, 1 + i % 3, seed=10 + i) for i in range(8)]
        expected = [model.run(x) for x in inputs]
        results: dict[int, list[np.ndarray]] = {}
        start = threading.Barrier(len(inputs))

        def work(i):
            start.wait()
            results[i] = [model.run(inputs[i]) for _ in range(20)]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, runs in results.items():
            for logits in runs:
                np.testing.assert_array_equal(logits, expected[i])
        self.assertEqual(len(results), len(inputs))

    def test_submit(self):
        model = onevit.Model(DIGITS, threads=2, hint="throughput")
        inputs = [random_input(model, 2, seed=20 + i) for i in range(6)]
        futures = [model.submit(x) for x in inputs]
        for x, future in zip(inputs, futures):
            np.testing.assert_array_equal(future.result(timeout=120), model.run(x))
        with self.assertRaises(TypeError):
            model.submit(inputs[0].astype(np.float64)).result(timeout=120)


class Images(Scratch):
    def test_classify_matches_the_program(self):
        """classify() of paths, arrays and PIL images gives `onevit classify --json`'s predictions."""
        from PIL import Image
        model = onevit.Model(DIGITS)
        result = run_tool(onevit_bin(), "classify", "--model", DIGITS, "--json", "--top", "3", *SAMPLES)
        expected = [json.loads(line)["topk"] for line in result.stdout.splitlines()]
        self.assertEqual(len(expected), len(SAMPLES))
        channels = model.info["architecture"]["channels"]
        for images in (SAMPLES, [str(p) for p in SAMPLES], [onevit.decode_image(p, channels) for p in SAMPLES],
                       [Image.open(p) for p in SAMPLES]):
            got = [[p._asdict() for p in predictions] for predictions in model.classify(images, top=3)]
            self.assertEqual(got, expected)

    def test_decode_and_preprocess_are_the_engines(self):
        """decode_image and preprocess give preprocess_dump's arrays bit for bit (the DeiT recipe:
        shorter side resize, bicubic, centre crop)."""
        model = onevit.Model(require_deit(self))
        tool = os.environ.get("ONEVIT_PREPROCESS_DUMP", str(REPO / "build" / "tests" / "preprocess_dump"))
        photo = REPO / "tests" / "data" / "images"
        photos = sorted(p for p in photo.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        self.assertTrue(photos, photo)
        info = model.info["preprocessing"]
        for path in photos[:4]:
            run_tool(tool, "decode", path, self.tmp / "decoded.npy")
            pixels = onevit.decode_image(path)
            np.testing.assert_array_equal(pixels, np.load(self.tmp / "decoded.npy").astype(np.uint8))
            self.assertEqual(onevit.decode_image(path.read_bytes()).tobytes(), pixels.tobytes())
            run_tool(tool, "preprocess", path, self.tmp / "input.npy", "--resize", info["resize"],
                     "--resize-size", info["resize_size"], "--height", 224, "--width", 224,
                     "--interpolation", info["interpolation"], "--mean", ",".join(map(repr, info["mean"])),
                     "--std", ",".join(map(repr, info["std"])))
            expected = np.load(self.tmp / "input.npy")
            np.testing.assert_array_equal(onevit.preprocess(path, model), expected)
            np.testing.assert_array_equal(onevit.preprocess(pixels, model), expected)


class ArraysAsFiles(Scratch):
    """A grey [H, W], grey + alpha [H, W, 2], RGB or RGBA [H, W, 4] array is the image its file is:
    PIL's np.asarray(Image.open(f)) given to preprocess/classify gives what the file gives."""

    def check(self, model: onevit.Model):
        from PIL import Image
        photo = Image.open(REPO / "tests" / "data" / "images" / "baseline.jpg").convert("RGB")
        alpha = Image.fromarray(np.random.default_rng(5).integers(0, 256, photo.size[::-1], dtype=np.uint8))
        for mode in ("L", "LA", "RGB", "RGBA"):
            image = photo.convert(mode)
            if "A" in mode:
                image.putalpha(alpha)
            path = self.tmp / f"{mode}.png"
            image.save(path)
            pixels = np.asarray(Image.open(path))
            self.assertEqual(pixels.ndim, 2 if mode == "L" else 3, mode)
            with self.subTest(mode=mode, channels=model.info["architecture"]["channels"]):
                np.testing.assert_array_equal(onevit.preprocess(pixels, model), onevit.preprocess(path, model))
                self.assertEqual(model.classify([pixels], top=3), model.classify([path], top=3))

    def test_digits(self):  # a grey model
        self.check(onevit.Model(DIGITS))

    def test_deit_tiny(self):  # an RGB model
        self.check(onevit.Model(require_deit(self)))


class PerImageErrors(Scratch):
    def test_classify_reports_a_bad_image_in_its_place(self):
        """As `onevit classify`: an image that cannot be read or preprocessed is its own onevit.Error,
        in its place; the others are classified as they are alone."""
        model = onevit.Model(DIGITS)
        missing = self.tmp / "missing.png"
        corrupt = self.tmp / "corrupt.png"
        corrupt.write_bytes(SAMPLES[0].read_bytes()[:100])
        results = model.classify([SAMPLES[0], missing, corrupt, SAMPLES[1]], top=2)
        self.assertEqual(len(results), 4)
        self.assertEqual(results[0], model.classify([SAMPLES[0]], top=2)[0])
        self.assertEqual(results[3], model.classify([SAMPLES[1]], top=2)[0])
        for result, path in ((results[1], missing), (results[2], corrupt)):
            self.assertIsInstance(result, onevit.Error)
            self.assertIn(str(path), str(result))
            self.assertEqual(len(str(result).splitlines()), 1)

    def test_an_image_preprocess_refuses(self):
        model = onevit.Model(require_deit(self))  # resizes the shorter side: a 1-pixel-high strip overflows
        strip = np.zeros((1, 10_000_000), np.uint8)
        results = model.classify([SAMPLES[0], strip], top=1)
        self.assertIsInstance(results[1], onevit.Error)
        self.assertIn("preprocess", str(results[1]))
        self.assertEqual(results[0], model.classify([SAMPLES[0]], top=1)[0])


class FromImagePaths(Scratch):
    """embed_images and explain take images as classify does and give the program's outputs."""

    def test_embed_images_is_onevit_embed(self):
        model = onevit.Model(DIGITS)
        for normalize in (False, True):
            flags = ["--normalize"] if normalize else []
            run_tool(onevit_bin(), "embed", "--model", DIGITS, "-o", self.tmp / "e.npy", *flags, *SAMPLES[:3])
            expected = np.load(self.tmp / "e.npy")
            got = model.embed_images(SAMPLES[:3], normalize=normalize)
            self.assertEqual(got.dtype, np.float32)
            np.testing.assert_array_equal(got, expected)
        x = np.stack([onevit.preprocess(p, model) for p in SAMPLES[:3]])
        np.testing.assert_array_equal(model.embed_images(SAMPLES[:3]), model.embed(x))

    def test_explain_is_onevit_explain(self):
        import torch
        from rollout_reference import attention_rollout
        model = onevit.Model(DIGITS)
        arch = model.info["architecture"]
        images = SAMPLES[:2]
        run_tool(onevit_bin(), "explain", "--model", DIGITS, "--out", self.tmp, *images)
        maps = model.explain(images)
        self.assertEqual(len(maps), len(images))
        for path, got in zip(images, maps):
            np.testing.assert_array_equal(got, np.load(self.tmp / f"{path.stem}.npy"))
            # Model.attention's maps, rolled out as the paper says, give the same map.
            attention = model.attention(np.stack([onevit.preprocess(path, model)]))
            self.assertEqual(attention.shape[:3], (1, arch["depth"], arch["heads"]))
            prefix = attention.shape[-1] - got.size
            expected = attention_rollout(torch.from_numpy(attention[0]).double(), prefix, got.shape).numpy()
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * expected.max())


class Package(unittest.TestCase):
    def test_version_is_the_programs(self):
        result = run_tool(onevit_bin(), "--version")
        self.assertEqual(f"onevit {onevit.__version__}", result.stdout.strip())

    def test_stub_declares_every_public_name(self):
        """__init__.pyi declares each public name of the package and of Model (and no name they lack)."""
        import ast
        stub = ast.parse(Path(onevit.__file__).with_name("__init__.pyi").read_text())
        top = {node.name for node in stub.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        top |= {node.target.id for node in stub.body if isinstance(node, ast.AnnAssign)}
        self.assertEqual(top - {"ImageLike"}, set(onevit.__all__) | {"Prediction"})
        model_stub = next(node for node in stub.body if isinstance(node, ast.ClassDef) and node.name == "Model")
        declared = {node.name for node in model_stub.body if isinstance(node, ast.FunctionDef)}
        declared |= {node.target.id for node in model_stub.body if isinstance(node, ast.AnnAssign)}
        public = {name for name in dir(onevit.Model(DIGITS)) if not name.startswith("_")} | {"__init__"}
        self.assertEqual(declared, public)

    def test_threads_beyond_the_cores_are_capped_quietly(self):
        """threads=1000 runs on the cores this process has, with no oneTBB warning on stderr."""
        script = ("import os, onevit; m = onevit.Model(%r, threads=1000); "
                  "print(m.threads, len(os.sched_getaffinity(0))); m.classify([%r])") % (str(DIGITS), str(SAMPLES[0]))
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=TOOL_ENV,
                                timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        threads, cores = map(int, result.stdout.split())
        self.assertEqual(threads, cores)


class BadArguments(Scratch):
    """Every bad argument is an exception naming what was expected; none crashes."""

    @classmethod
    def setUpClass(cls):
        cls.model = onevit.Model(DIGITS)
        cls.x = random_input(cls.model, 2, seed=3)

    def assert_raises(self, kind, fragment, call, *args, **kwargs):
        with self.assertRaises(kind) as caught:
            call(*args, **kwargs)
        self.assertIn(fragment, str(caught.exception))
        self.assertEqual(len(str(caught.exception).splitlines()), 1, str(caught.exception))

    def test_run_input(self):
        arch = self.model.info["architecture"]
        shape = f"[N, {arch['channels']}, {arch['image_height']}, {arch['image_width']}]"
        for run in (self.model.run, self.model.features):
            self.assert_raises(TypeError, "float32", run, self.x.astype(np.float64))
            self.assert_raises(TypeError, "float32", run, self.x.astype(">f4"))
            self.assert_raises(TypeError, "numpy.ndarray", run, self.x.tolist())
            self.assert_raises(TypeError, "numpy.ndarray", run, None)
            self.assert_raises(ValueError, shape, run, self.x[0])
            self.assert_raises(ValueError, shape, run, self.x[:0])
            self.assert_raises(ValueError, shape, run, self.x[:, :, :-1])
            self.assert_raises(ValueError, "C-contiguous", run, np.asfortranarray(self.x))
            self.assert_raises(ValueError, "C-contiguous", run, np.concatenate([self.x, self.x])[::2])
            unaligned = np.frombuffer(b"\0" + self.x.tobytes(), np.float32, count=self.x.size, offset=1)
            self.assert_raises(ValueError, "aligned", run, unaligned.reshape(self.x.shape))
        # A read-only array is fine: run only reads.
        frozen = self.x.copy()
        frozen.flags.writeable = False
        np.testing.assert_array_equal(self.model.run(frozen), self.model.run(self.x))

    def test_load(self):
        missing = self.tmp / "missing.ovit"
        self.assert_raises(onevit.Error, str(missing), onevit.Model, missing)
        garbage = self.tmp / "garbage.ovit"
        garbage.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        self.assert_raises(onevit.Error, str(garbage), onevit.Model, garbage)
        self.assert_raises(ValueError, "latency or throughput", onevit.Model, DIGITS, hint="fast")
        self.assert_raises(ValueError, "f32, bf16, int8 or auto", onevit.Model, DIGITS, precision="f16")
        self.assert_raises(TypeError, "precision must be str", onevit.Model, DIGITS, precision=8)
        self.assert_raises(ValueError, "threads must be >= 0, got -1", onevit.Model, DIGITS, threads=-1)
        self.assert_raises(ValueError, "streams must be >= 0, got -2", onevit.Model, DIGITS, streams=-2)
        self.assert_raises(ValueError, "threads must be at most", onevit.Model, DIGITS, threads=2**40)
        self.assert_raises(onevit.Error, "streams", onevit.Model, DIGITS, threads=1, streams=2)
        self.assert_raises(TypeError, "os.PathLike", onevit.Model, 42)
        self.assert_raises(TypeError, "threads must be int, got str", onevit.Model, DIGITS, threads="two")
        self.assert_raises(TypeError, "hint must be str", onevit.Model, DIGITS, hint=None)
        self.assertTrue(issubclass(onevit.Error, RuntimeError))

    def test_images(self):
        missing = self.tmp / "missing.png"
        self.assert_raises(onevit.Error, f"{missing}: cannot open", onevit.decode_image, missing)
        self.assert_raises(onevit.Error, "not a JPEG, PNG, WebP, BMP or TIFF", onevit.decode_image, b"not an image")
        self.assert_raises(onevit.Error, "channels", onevit.decode_image, SAMPLES[0], 2)
        self.assert_raises(TypeError, "", onevit.decode_image, 3.5)
        self.assert_raises(TypeError, "sequence", self.model.classify, SAMPLES[0])
        self.assert_raises(TypeError, "PIL", self.model.classify, [3])
        self.assert_raises(TypeError, "uint8", self.model.classify, [np.zeros((8, 8, 1), np.float32)])
        self.assert_raises(ValueError, "[H, W, C]", self.model.classify, [np.zeros((8, 8, 5), np.uint8)])
        self.assert_raises(ValueError, "[H, W, C]", self.model.classify, [np.zeros((0, 8, 1), np.uint8)])
        self.assert_raises(ValueError, "[H, W, C]", self.model.classify, [np.zeros((8, 8, 1, 1), np.uint8)])
        self.assert_raises(ValueError, "top must be >= 1, got 0", self.model.classify, [SAMPLES[0]], top=0)
        self.assert_raises(ValueError, "top must be >= 1", self.model.classify, [SAMPLES[0]], top=-3)
        for call in (self.model.embed_images, self.model.explain):
            self.assert_raises(onevit.Error, str(missing), call, [SAMPLES[0], missing])
            self.assert_raises(TypeError, "sequence", call, SAMPLES[0])
            self.assert_raises(TypeError, "PIL", call, [3])
        self.assert_raises(TypeError, "normalize must be bool", self.model.embed_images, SAMPLES[:1], normalize=1)
        self.assert_raises(TypeError, "top must be int", self.model.classify, [SAMPLES[0]], top=2.5)
        self.assert_raises(TypeError, "uint8", onevit.preprocess, np.zeros((8, 8), np.int32), self.model)


class Documentation(unittest.TestCase):
    def test_help_reads_well(self):
        import pydoc
        text = pydoc.render_doc(onevit.Model, renderer=pydoc.plaintext)
        for fragment in ("Model(path, threads=0, streams=0, hint=\"latency\", precision=None)",
                         "run(", "features(", "submit(", "classify(", "embed(", "embed_images(", "explain(",
                         "attention(", "info", "C-contiguous float32", "WebP, BMP, TIFF", "chosen per model",
                         "\"auto\""):
            self.assertIn(fragment, text)
        for stale in ("raise until", "JPEG or PNG", "JPEG/PNG", "[H, W, 3] (RGB)"):
            self.assertNotIn(stale, text + pydoc.render_doc(onevit, renderer=pydoc.plaintext))
        self.assertEqual(onevit.Error.__module__, "onevit")
        stubs = Path(onevit.__file__).with_name("__init__.pyi")
        self.assertTrue(stubs.is_file() and Path(onevit.__file__).with_name("py.typed").is_file())


if __name__ == "__main__":
    unittest.main()
