"""onevit: Vision Transformer inference on x86 CPUs (oneDNN + oneTBB), from Python.

    import onevit
    model = onevit.Model("deit_tiny.ovit")
    for p in model.classify(["dog.jpg"], top=5)[0]:
        print(f"{100 * p.prob:5.1f}%  {p.label}")
    logits = model.run(x)   # x: float32 numpy [N, C, H, W], preprocessed

Every failure the engine reports raises onevit.Error (a RuntimeError) with its
one-line message; an argument of the wrong type, dtype, shape or layout raises
TypeError or ValueError naming what was expected. onevit.dask classifies on a
Dask cluster.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple, Sequence, Union

import numpy as np

from . import _core
from ._core import Error, decode_image

__all__ = ["Error", "Model", "Prediction", "decode_image", "preprocess"]

ImageLike = Union[str, "os.PathLike[str]", np.ndarray, Any]  # Any: a PIL.Image.Image


class Prediction(NamedTuple):
    """One class of an image's top k: index, label ("" when the model has no labels)
    and softmax probability (the float32's shortest decimal form, as `onevit classify` prints it)."""
    index: int
    label: str
    prob: float


class Model(_core.Model):
    """A loaded ViT, ready to run from any number of threads at once.

    Model(path, threads=0, streams=0, hint="latency", precision=None)

    path: an .ovit model file (weights/convert.py makes one from a checkpoint).
    threads: threads in all; 0 = chosen per model (at most all cores) by a cost
    model of its forward pass (a small ViT gains little from many cores). streams: requests run at
    once, 0 = chosen for the hint. hint: "latency" (one stream) or "throughput"
    (several streams, each running whole requests). precision: "f32", "bf16",
    "int8" or "auto" (the fastest this CPU runs natively); None = the precision
    the file was written for (info["stored_precision"]); model.precision says
    which runs. Loading maps and validates the file and prepares the weights;
    any problem raises onevit.Error with the engine's one-line message.
    """

    def __init__(self, path: str | os.PathLike[str], threads: int = 0, streams: int = 0,
                 hint: str = "latency", precision: str | None = None) -> None:
        _require("threads", threads, int)
        _require("streams", streams, int)
        _require("hint", hint, str)
        if precision is not None:
            _require("precision", precision, str)
        super().__init__(os.fspath(path), threads, streams, hint, precision)
        self.path = os.fspath(path)
        # submit()'s requests wait for their result on these threads (created on first use),
        # one per stream: as many requests in flight as the model runs at once.
        self._waiters = ThreadPoolExecutor(max_workers=self.streams, thread_name_prefix="onevit-submit")

    def __repr__(self) -> str:
        arch = self.info["architecture"]
        return (f"onevit.Model({self.path!r}: {arch['family']} {arch['image_height']}x{arch['image_width']}, "
                f"{arch['num_classes']} classes, {self.threads} threads, {self.streams} streams)")

    def submit(self, x: np.ndarray) -> Future[np.ndarray]:
        """Queues run(x) and returns at once: a concurrent.futures.Future of the logits.

        The future keeps x alive until the run is done (do not write to x until
        then); errors, including a wrong x, arrive through the future."""
        return self._waiters.submit(self.run, x)

    def classify(self, images: Sequence[ImageLike], top: int = 5) -> list[list[Prediction]]:
        """The top classes of each image, most probable first: one list of Prediction per image.

        images: image file paths (JPEG/PNG), uint8 numpy arrays [H, W, C] (RGB, or
        grey for a one-channel model) or PIL images, mixed freely. They are
        decoded, preprocessed as the model file says, and run as one batch."""
        if isinstance(images, (str, os.PathLike, np.ndarray)):
            raise TypeError("images must be a sequence of images (a list), got one "
                            f"{type(images).__name__}")
        _require("top", top, int)
        channels = self.info["architecture"]["channels"]
        arrays = [_pixels(image, channels) for image in images]
        return [[Prediction(index, label, _shortest(prob)) for index, label, prob in image]
                for image in self._classify_arrays(arrays, top)]


def preprocess(image: ImageLike, model: Model) -> np.ndarray:
    """The model's input for one image, float32 [C, H, W]: resized (and centre-cropped),
    scaled to [0, 1] and normalised as model's file says, bit-exact to onevit's own
    pipeline (PIL + torchvision to within a grey level). image: a path, a uint8 numpy
    array [H, W, C] or a PIL image. Stack several with numpy.stack for Model.run."""
    return _core._preprocess_array(_pixels(image, model.info["architecture"]["channels"]), model)


def _pixels(image: ImageLike, channels: int) -> np.ndarray:
    """A path, numpy array or PIL image → what the engine takes: uint8 pixels [H, W, C]."""
    if isinstance(image, (str, os.PathLike)):
        return decode_image(image, channels)
    if isinstance(image, np.ndarray):
        return image
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image, without importing PIL
        return np.asarray(image.convert("RGB" if channels == 3 else "L"))
    raise TypeError("an image must be a path, a uint8 numpy array [H, W, C] or a PIL image, got "
                    f"{type(image).__name__}")


def _require(name: str, value: Any, kind: type) -> None:
    """A one-line TypeError where pybind11 would list the C++ signature."""
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{name} must be {kind.__name__}, got {type(value).__name__}")


def _shortest(prob: float) -> float:
    """The float32 prob's shortest decimal form (0.7515, not 0.7515000104904175)."""
    return float(str(np.float32(prob)))


for _compiled in (Error, decode_image):
    _compiled.__module__ = __name__  # help() and tracebacks say onevit.Error, not onevit._core.Error
