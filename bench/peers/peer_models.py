"""The model every engine runs, from one set of weights, and the inputs they all get.

A model is named either `random:NAME[@SIZE]` — a fixed-seed random ViT of
../shared/peers/reference_vit.py (vit_ti16, vit_s16, vit_b16, vit_l16; `test`: a 2-block
width-64 ViT for the smoke test), made at 224² and run at SIZE² (default 224) with its position
embedding resampled as timm does (bicubic, antialiased; convert.py --image-size for onevit) — or a timm checkpoint (`.safetensors`, `.pth`) with its
timm architecture name (`--arch`) and optionally another input size (`--image-size`: timm
resamples the position embedding for the peers, weights/convert.py --image-size for onevit).

`prepare` writes, once per model, into the work directory (reused by later runs):
  weights.safetensors  the random model's timm-named state dict (a checkpoint is used as given)
  model.ovit           weights/convert.py's conversion, for onevit
  model.onnx           torch.onnx.export of the module, dynamic batch (for ONNX Runtime, OpenVINO)
  check.npy            the inputs Δlogit is measured on: 8 photos of the evaluation set
  calibration.npy      the int8 calibration inputs: augmented views of photos never evaluated
  reference.npy        the float64 PyTorch logits of check.npy: the reference of every Δlogit
The photos are preprocessed by onevit itself (onevit_inputs.py), so every engine gets the same
input. Without photos (no ../shared/data), random normal inputs stand in.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(REPO), "shared")
sys.path.insert(0, os.path.join(SHARED, "peers"))
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))

DEBIAN_PYTHON = "/usr/bin/python3"  # weights/convert.py and onevit's Python module are built for it
CHECK_IMAGES = 8
RANDOM_SIZES = {"vit_ti16": "tiny", "vit_s16": "small", "vit_b16": "base", "vit_l16": "large"}
TEST_CONFIG = (64, 2, 2)  # random:test: width, depth, heads


class ModelError(RuntimeError):
    """A model that cannot be prepared; the message says why, in one line."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    label: str                 # as tables show it: vit_s16@512, deit_tiny_patch16_224
    image_size: int
    random_name: str = ""      # reference_vit's name, for random models
    checkpoint: str = ""       # a timm checkpoint, for real models
    arch: str = ""             # its timm architecture name

    @property
    def key(self) -> str:
        """The work directory's name for this model."""
        return re.sub(r"[^A-Za-z0-9_.@-]", "_", self.label)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @staticmethod
    def from_json(text: str) -> "ModelSpec":
        return ModelSpec(**json.loads(text))


def parse_model(text: str, arch: str | None = None, image_size: int | None = None) -> ModelSpec:
    """`random:NAME[@SIZE]`, or a checkpoint path (with --arch, optionally --image-size)."""
    if text.startswith("random:"):
        name, _, size = text[len("random:"):].partition("@")
        if name not in RANDOM_SIZES and name != "test":
            raise ModelError(f"unknown random model {name!r}: one of {', '.join([*RANDOM_SIZES, 'test'])}")
        if arch or image_size:
            raise ModelError("--arch/--image-size are for checkpoints; a random model takes NAME@SIZE")
        pixels = int(size) if size.isdigit() else 224
        if size and not size.isdigit() or pixels % 16:
            raise ModelError(f"bad size in {text!r}: a multiple of 16 pixels")
        return ModelSpec(label=name if pixels == 224 else f"{name}@{pixels}",
                         image_size=pixels, random_name=name)
    if not os.path.isfile(text):
        raise ModelError(f"no such model file: {text} (or name a random model: random:vit_s16)")
    if not arch:
        raise ModelError(f"{text}: a checkpoint needs --arch (its timm name, e.g. deit_tiny_patch16_224)")
    default = int(m.group(1)) if (m := re.search(r"_(\d+)$", arch)) else 224
    size = image_size or default
    return ModelSpec(label=arch if size == default else f"{arch}@{size}", image_size=size,
                     checkpoint=os.path.abspath(text), arch=arch)


def _reference_vit(spec: ModelSpec, image_size: int):
    import reference_vit as rv
    rv.IMG = image_size  # the module reads it when it builds (position embedding, patches)
    rv.CONFIGS.setdefault("test", TEST_CONFIG)
    return rv


def build_module(spec: ModelSpec, work_dir: str):
    """The PyTorch module (eval, float32) every engine's weights come from."""
    import torch
    if spec.random_name:
        rv = _reference_vit(spec, 224)
        module = rv.build(spec.random_name)
        if spec.image_size == 224:
            return module
        state = module.state_dict()
        state["pos_embed"] = resample_pos_embed(state["pos_embed"], spec.image_size // rv.PATCH)
        module = _reference_vit(spec, spec.image_size).VisionTransformer(*rv.CONFIGS[spec.random_name])
        module.load_state_dict(state)
        return module.eval()
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn
    state = _load_state(spec.checkpoint)
    classes = state["head.weight"].shape[0] if "head.weight" in state else 0
    model = timm.create_model(spec.arch, pretrained=False, num_classes=classes, img_size=spec.image_size)
    state = checkpoint_filter_fn({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, model)
    model.load_state_dict(state, strict=True)
    return model.eval()


def resample_pos_embed(pos_embed, grid: int, prefix: int = 1):
    """The patch rows of a square position embedding resized to grid x grid: bicubic with
    antialiasing, as timm's resample_abs_pos_embed (and convert.py --pos-resample bicubic-antialias)."""
    import torch
    import torch.nn.functional as F
    old = int(round((pos_embed.shape[1] - prefix) ** 0.5))
    patches = pos_embed[:, prefix:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False, antialias=True)
    return torch.cat([pos_embed[:, :prefix], patches.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)], dim=1)


def _load_state(path: str) -> dict:
    import safetensors_io
    if path.endswith(".safetensors"):
        return safetensors_io.load_file(path)
    import torch
    return {k: v.numpy() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}


@dataclasses.dataclass
class Prepared:
    spec: ModelSpec
    dir: str
    ovit: str
    check: str            # .npy [8, C, H, W]
    calibration: str      # .npy [N, C, H, W]
    reference: np.ndarray  # float64 logits of check
    photos: bool          # real photos (else random normal inputs)

    @property
    def onnx(self) -> str:
        return os.path.join(self.dir, "model.onnx")


def _run(cmd: list[str], what: str, env: dict | None = None) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if proc.returncode:
        raise ModelError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}")


def _convert(spec: ModelSpec, weights: str, out: str) -> None:
    cmd = [DEBIAN_PYTHON, os.path.join(REPO, "weights", "convert.py"), weights]
    if spec.random_name:
        dim, _, heads = _reference_vit(spec, 224).CONFIGS[spec.random_name]
        cmd += ["--arch", f"vit_{RANDOM_SIZES.get(spec.random_name, 'tiny')}_patch16_224", "--heads", str(heads)]
    else:
        cmd += ["--arch", spec.arch]
    if "@" in spec.label:  # another size than the weights': resampled as build_module does
        cmd += ["--image-size", str(spec.image_size), "--pos-resample", "bicubic-antialias"]
    _run(cmd + ["-o", out + ".tmp"], "weights/convert.py")
    os.replace(out + ".tmp", out)


def photo_sets(photos_dir: str) -> tuple[list[str], list[str]]:
    """(the 250 labelled evaluation photos, the other photos) under ../shared/data; empty if absent."""
    evaluation = sorted(glob.glob(os.path.join(photos_dir, "imagenet-sample", "*.JPEG")))
    others = sorted(p for p in glob.glob(os.path.join(photos_dir, "images", "**", "*"), recursive=True)
                    if p.lower().endswith((".jpg", ".jpeg", ".png")))
    return evaluation, others


def onevit_inputs(build_dir: str, ovit: str, out: str, images: list[str], crops: int = 0, seed: int = 0) -> None:
    """onevit's preprocessing of `images` (or `crops` augmented views of them) into out (.npy)."""
    env = dict(os.environ, PYTHONPATH=os.path.join(build_dir, "engine", "python"))
    cmd = [DEBIAN_PYTHON, os.path.join(HERE, "onevit_inputs.py"), "--model", ovit, "--out", out + ".tmp.npy"]
    if crops:
        cmd += ["--crops", str(crops), "--seed", str(seed)]
    _run(cmd + images, "onevit_inputs.py (onevit's preprocessing; is onevit's Python module built?)", env)
    os.replace(out + ".tmp.npy", out)


def export_onnx(module, spec: ModelSpec, path: str) -> None:
    """torch.onnx.export with a dynamic batch; the legacy exporter where torch has no dynamo one."""
    import torch
    x = torch.zeros(1, 3, spec.image_size, spec.image_size)
    tmp = path + ".tmp.onnx"
    with torch.no_grad():
        try:
            torch.onnx.export(module, (x,), tmp, input_names=["x"], output_names=["logits"], opset_version=18,
                              dynamo=False, dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
        except TypeError:  # torch < 2.5: no dynamo argument
            torch.onnx.export(module, (x,), tmp, input_names=["x"], output_names=["logits"], opset_version=17,
                              dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    os.replace(tmp, path)


def prepare(spec: ModelSpec, work: str, build_dir: str, photos_dir: str, calibration: int,
            need_onnx: bool) -> Prepared:
    """The model's files in work/<key>/ (made once; a file already there is reused)."""
    import torch
    directory = os.path.join(work, spec.key)
    os.makedirs(directory, exist_ok=True)
    module = build_module(spec, directory)
    weights = spec.checkpoint
    if spec.random_name:
        weights = os.path.join(directory, "weights.safetensors")
        if not os.path.exists(weights):
            import safetensors_io
            made = _reference_vit(spec, 224).build(spec.random_name)  # the weights as made: at 224
            safetensors_io.save_file({k: v.detach().numpy() for k, v in made.state_dict().items()}, weights)
    ovit = os.path.join(directory, "model.ovit")
    if not os.path.exists(ovit):
        _convert(spec, weights, ovit)

    evaluation, others = photo_sets(photos_dir)
    check = os.path.join(directory, "check.npy")
    calib = os.path.join(directory, f"calibration{calibration}.npy")
    photos = bool(evaluation and others)
    if photos:
        if not os.path.exists(check):
            onevit_inputs(build_dir, ovit, check, evaluation[:: len(evaluation) // CHECK_IMAGES][:CHECK_IMAGES])
        if not os.path.exists(calib):
            onevit_inputs(build_dir, ovit, calib, others, crops=calibration, seed=1)
    else:
        rng = np.random.default_rng(0)
        shape = (3, spec.image_size, spec.image_size)
        np.save(check, rng.standard_normal((CHECK_IMAGES, *shape), dtype=np.float32))
        np.save(calib, rng.standard_normal((calibration, *shape), dtype=np.float32))

    reference_path = os.path.join(directory, "reference.npy")
    if not os.path.exists(reference_path):
        with torch.no_grad():
            reference = module.double()(torch.from_numpy(np.load(check)).double()).numpy()
        np.save(reference_path, reference)
        module.float()
    prepared = Prepared(spec, directory, ovit, check, calib, np.load(reference_path), photos)
    if need_onnx and not os.path.exists(prepared.onnx):
        export_onnx(module, spec, prepared.onnx)
    return prepared
