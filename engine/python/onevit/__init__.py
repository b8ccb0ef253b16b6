"""onevit: Vision Transformer inference on x86 CPUs (oneDNN + oneTBB), from Python.

    import onevit
    model = onevit.Model("deit_tiny.ovit")
    for p in model.classify(["dog.jpg"], top=5)[0]:
        print(f"{100 * p.prob:5.1f}%  {p.label}")
    logits = model.run(x)   # x: float32 numpy [N, C, H, W], preprocessed
    vectors = model.embed_images(["dog.jpg"], normalize=True)
    heat_map = model.explain(["dog.jpg"])[0]

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
from ._core import Error, __version__, decode_image

__all__ = ["Error", "Model", "Prediction", "__version__", "decode_image", "preprocess"]

_INT_MAX = 2**31 - 1

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
    model of its forward pass (a small ViT gains little from many cores); more
    than the cores this process may use run on those cores (model.threads says
    how many). streams: requests run at once, 0 = chosen for the hint. hint: "latency" (one stream) or "throughput"
    (several streams, each running whole requests). precision: "f32", "bf16",
    "int8" or "auto" (the fastest this CPU runs natively); None = the precision
    the file was written for (info["stored_precision"]); model.precision says
    which runs. Loading maps and validates the file and prepares the weights;
    any problem raises onevit.Error with the engine's one-line message.
    """

    def __init__(self, path: str | os.PathLike[str], threads: int = 0, streams: int = 0,
                 hint: str = "latency", precision: str | None = None) -> None:
        _require_count("threads", threads, 0)
        _require_count("streams", streams, 0)
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

    def classify(self, images: Sequence[ImageLike], top: int = 5) -> list[list[Prediction] | Error]:
        """The top classes of each image: per image, its list of Prediction, most probable first
        — or, for an image that cannot be read or preprocessed, the onevit.Error saying why (the
        others are still classified, as `onevit classify` reports a bad image and goes on).

        images: image files (JPEG, PNG, WebP, BMP, TIFF), uint8 numpy arrays [H, W] or
        [H, W, C] (grey, grey + alpha, RGB or RGBA: converted as PIL converts a file's
        pixels) or PIL images, mixed freely. They are decoded, preprocessed as the model
        file says, and run as one batch. top: classes per image, >= 1."""
        _require_images(images)
        _require_count("top", top, 1)
        results: list[Any] = []
        pixels = []
        for image in images:
            try:
                pixels.append(_pixels(image, self))
                results.append(None)
            except Error as e:  # an unreadable file: reported in its place
                results.append(e)
        classified = iter(self._classify_arrays(pixels, top))
        for i, result in enumerate(results):
            if result is None:
                image = next(classified)
                results[i] = Error(image) if isinstance(image, str) else [
                    Prediction(index, label, _shortest(prob)) for index, label, prob in image]
        return results

    def embed_images(self, images: Sequence[ImageLike], normalize: bool = False) -> np.ndarray:
        """The pooled embedding of each image (as embed() of their preprocessed input):
        float32 [N, dim], each row scaled to unit L2 norm if normalize. images as in
        classify(); one that cannot be read raises onevit.Error naming it."""
        _require_images(images)
        _require("normalize", normalize, bool, allow_bool=True)
        return self._embed_arrays([_pixels(image, self) for image in images], normalize)

    def explain(self, images: Sequence[ImageLike]) -> list[np.ndarray]:
        """Where the model looked, by attention rollout (as `onevit explain`): per image, a
        float32 map [grid_height, grid_width] over the patches, summing to 1. images as in
        classify(); one that cannot be read raises onevit.Error naming it."""
        _require_images(images)
        return self._explain_arrays([_pixels(image, self) for image in images])


def preprocess(image: ImageLike, model: Model) -> np.ndarray:
    """The model's input for one image, float32 [C, H, W]: resized (and centre-cropped),
    scaled to [0, 1] and normalised as model's file says, bit-exact to onevit's own
    pipeline (PIL + torchvision to within a grey level). image: a path, a uint8 numpy
    array [H, W] or [H, W, C] or a PIL image. Stack several with numpy.stack for Model.run."""
    return _core._preprocess_array(_pixels(image, model), model)


def _pixels(image: ImageLike, model: _core.Model) -> np.ndarray:
    """A path, numpy array or PIL image → what the engine takes: uint8 pixels [H, W(, C)]
    (arrays as they are: the engine converts their channels as PIL does)."""
    if isinstance(image, (str, os.PathLike)):
        return decode_image(image, model.info["architecture"]["channels"])
    if isinstance(image, np.ndarray):
        return image
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image, without importing PIL
        return np.asarray(image.convert("RGB" if model.info["architecture"]["channels"] == 3 else "L"))
    raise TypeError("an image must be a path, a uint8 numpy array [H, W, C] or a PIL image, got "
                    f"{type(image).__name__}")


def _require(name: str, value: Any, kind: type, *, allow_bool: bool = False) -> None:
    """A one-line TypeError where pybind11 would list the C++ signature."""
    if not isinstance(value, kind) or (isinstance(value, bool) and not allow_bool):
        raise TypeError(f"{name} must be {kind.__name__}, got {type(value).__name__}")


def _require_count(name: str, value: Any, minimum: int) -> None:
    """An int from minimum to INT_MAX: TypeError for another type, ValueError out of range."""
    _require(name, value, int)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if value > _INT_MAX:
        raise ValueError(f"{name} must be at most {_INT_MAX}, got {value}")


def _require_images(images: Any) -> None:
    if isinstance(images, (str, os.PathLike, np.ndarray)) or not hasattr(images, "__len__"):
        raise TypeError("images must be a sequence of images (a list), got one "
                        f"{type(images).__name__}")


def _shortest(prob: float) -> float:
    """The float32 prob's shortest decimal form (0.7515, not 0.7515000104904175)."""
    return float(str(np.float32(prob)))


for _compiled in (Error, decode_image):
    _compiled.__module__ = __name__  # help() and tracebacks say onevit.Error, not onevit._core.Error
