#!/usr/bin/python3
"""Attention maps and attention rollout: onevit vs. the float64 PyTorch reference.

For a random ViT-Ti/16, a random DeiT-Ti distilled (class + distillation
token) and, when ../shared/data has it, the real DeiT-tiny:

  1. `onevit infer --attention A.npy` on an input: every block's attention
     probabilities against tests/reference/vit_reference.py's (float64), and the
     logits identical, bit for bit, to a run that did not ask for them;
  2. `onevit explain --model M --out DIR IMAGE...`: DIR/<stem>.npy against
     tests/reference/rollout_reference.py on the reference's attention for the
     same input (onevit's own preprocessing, from tests/tools/preprocess_dump,
     so that only the model and the rollout are compared); the .npy is float32
     [grid_h, grid_w] summing to 1; DIR/<stem>.png is the photo's size (small ones
     scaled up by a whole factor to 448 pixels on the shorter side) with the model's
     crop (torchvision's Resize + CenterCrop, computed here) outlined in cyan, and for
     the labelled DeiT-tiny its Title text chunk is the reference's top-1 label;
  3. the random ViT-Ti without its head (num_classes 0): the same maps, "no classifier"
     said on stdout and in the Title; without its class token: refused in one line;
  4. a missing image, a good one, an undecodable one and the good one again
     (whose outputs would overwrite the first's): one error line each for the
     three on stderr, exit status 1, the good image's outputs written.

Tolerances: attention probabilities max|Δ| ≤ REL_TOL (1e-4) × max(1, max|ref|);
rollout maps max|Δ| ≤ REL_TOL × max|ref| (relative to the map's peak, since a map
over 196 patches has values ~5e-3); the .npy sum within 1e-5 of 1.

Usage:
    /usr/bin/python3 tests/explain_test.py --onevit build/apps/onevit \\
        --preprocess-dump build/tests/preprocess_dump [--data DIR]
Exit status: 0 pass, 1 a comparison failed, 2 a tool failed.
"""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import (REL_TOL, TOOL_ENV, argument_parser, exit_status, parity, report,  # noqa: E402
                     resolve_converter, resolve_onevit, run_tool, scratch_dir,
                     set_torch_threads)  # before torch

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from random_vit import random_vit_state  # noqa: E402
from rollout_reference import attention_rollout  # noqa: E402
import safetensors_io  # noqa: E402
import vit_reference  # noqa: E402

SEED = 20261128
SUM_TOL = 1e-5
MIN_SHORTER_SIDE = 448  # explain draws small photos scaled up to this
CYAN = (0, 255, 255)     # the crop's outline
REPO_PHOTOS = ["tests/data/images/baseline.jpg", "tests/data/images/grey.jpg"]
SHARED_PHOTOS = ["dog.jpg", "cheetah.jpg", "magpie.jpeg"]

# name -> (converter --arch, depth, distilled); ViT-Ti widths: dim 192, 3 heads, MLP 768.
RANDOM_MODELS = {
    "random ViT-Ti/16": ("vit_tiny_patch16_224", 12, False),
    "random DeiT-Ti distilled": ("deit_tiny_distilled_patch16_224", 12, True),
}


def random_state(depth: int, distilled: bool) -> dict:
    state = random_vit_state(192, depth, mlp_dim=768, num_classes=1000, seed=SEED + distilled,
                             prefix=2 if distilled else 1)
    if distilled:
        g = torch.Generator().manual_seed(SEED)
        state["dist_token"] = (torch.randn((1, 1, 192), generator=g) * 0.5).clamp_(-1, 1)
        state["head_dist.weight"] = torch.randn((1000, 192), generator=g) * 3.0 * 192 ** -0.5
        state["head_dist.bias"] = torch.randn((1000,), generator=g) * 0.1
    return state


def onevit_input(dump: str, image: str, meta: dict, out: str) -> np.ndarray:
    """What onevit feeds the model for `image`, by the .ovit's preprocessing recipe: [1, C, H, W]."""
    cmd = [dump, "preprocess", image, out, "--resize", str(meta["preprocess.resize"]),
           "--resize-size", str(meta["preprocess.resize_size"]),
           "--height", str(meta["arch.image_height"]), "--width", str(meta["arch.image_width"]),
           "--interpolation", str(meta["preprocess.interpolation"]),
           "--mean", ",".join(str(v) for v in meta["preprocess.mean"]),
           "--std", ",".join(str(v) for v in meta["preprocess.std"])]
    run_tool(cmd, "preprocess_dump")
    return np.load(out)[None]


def crop_box(photo_size: tuple[int, int], meta: dict) -> tuple[float, float, float, float]:
    """(left, top, width, height) in photo pixels of what torchvision's Resize + CenterCrop keep, by the
    .ovit's recipe: the rectangle explain's PNG outlines."""
    width, height = photo_size
    out_h, out_w = meta["arch.image_height"], meta["arch.image_width"]
    size = meta["preprocess.resize_size"]
    if meta["preprocess.resize"] == "direct":
        return 0.0, 0.0, float(width), float(height)
    if meta["preprocess.resize"] == "squash_then_crop":
        resized_w = resized_h = size
    elif width > height:
        resized_w, resized_h = int(size * width / height), size
    else:
        resized_w, resized_h = size, int(size * height / width)
    left, top = round((resized_w - out_w) / 2.0), round((resized_h - out_h) / 2.0)
    sx, sy = width / resized_w, height / resized_h
    return left * sx, top * sy, out_w * sx, out_h * sy


def outline_problems(drawn: np.ndarray, box: tuple[float, float, float, float], factor: int) -> list[str]:
    """The crop outlined in cyan just outside the middle of its left, right and bottom edges, inside the PNG
    (the caption's band darkens the top)."""
    left, top, width, height = (v * factor for v in box)
    right, bottom = left + width, top + height
    mid_x, mid_y = int(left + width / 2), int(top + height / 2)
    problems = []
    for edge, (x, y) in {"left": (round(left) - 1, mid_y), "right": (round(right), mid_y),
                         "bottom": (mid_x, round(bottom))}.items():
        if 0 <= x < drawn.shape[1] and 0 <= y < drawn.shape[0] and tuple(drawn[y, x]) != CYAN:
            problems.append(f"the crop's {edge} edge is not outlined at ({x}, {y}): {tuple(drawn[y, x])}")
    return problems


class Checker:
    """Runs the checks of one model and keeps a table row per check."""

    def __init__(self, onevit: str, dump: str, tmp: str):
        self.onevit, self.dump, self.tmp = onevit, dump, tmp
        self.failures: list[str] = []
        self.rollout_diffs: list[float] = []

    def row(self, model: str, what: str, diff: float, tol: float, ok: bool) -> None:
        print(f"{model:<30}{what:<34}{diff:>12.3e}{tol:>12.3e}  {'ok' if ok else 'FAIL'}", flush=True)

    def attention(self, name: str, ovit: str, ref_model, x: np.ndarray) -> None:
        """infer --attention on x: probabilities vs. the reference; logits unchanged by asking."""
        inp, plain, traced, maps = (os.path.join(self.tmp, f) for f in
                                    ("in.npy", "plain.npy", "traced.npy", "attention.npy"))
        np.save(inp, x.astype(np.float32))
        run_tool([self.onevit, "infer", "--model", ovit, "--input", inp, "--output", plain], "onevit infer")
        run_tool([self.onevit, "infer", "--model", ovit, "--input", inp, "--output", traced,
                  "--attention", maps], "onevit infer --attention")
        if not np.array_equal(np.load(plain), np.load(traced)):
            self.failures.append(f"{name}: logits differ when the attention maps are asked for")
        with torch.no_grad():
            _, ref = ref_model.forward_with_attention(torch.from_numpy(x).to(torch.float64))
        got = np.load(maps)
        if got.shape != tuple(ref.shape):
            self.failures.append(f"{name}: attention shape {got.shape}, expected {tuple(ref.shape)}")
            return
        check = parity(got, ref.numpy())
        self.row(name, f"attention {got.shape[0]}×{got.shape[1]}×{got.shape[2]}×{got.shape[3]}²",
                 check.diff, check.tol, check.ok)
        if not check.ok:
            self.failures.append(f"{name}: attention max|Δ| {check.diff:.3e} > {check.tol:.3e} ({check.worst})")

    def rollout(self, name: str, ovit: str, ref_model, meta: dict, photos: list[str],
                labels: list[str] | None, headless: bool = False) -> None:
        """explain on photos: each .npy vs. the reference rollout, each .png's size (and Title).

        headless: the .ovit has no classifier (ref_model's head is not used): the map alone,
        said so on stdout and in the Title."""
        out_dir = os.path.join(self.tmp, "explained")
        printed = run_tool([self.onevit, "explain", "--model", ovit, "--out", out_dir] + photos, "onevit explain")
        if headless and printed.count(": no classifier (attention rollout only) -> ") != len(photos):
            self.failures.append(f"{name}: explain's lines do not say the model has no classifier: {printed!r}")
        cfg = ref_model.cfg
        for photo in photos:
            stem = os.path.join(out_dir, os.path.splitext(os.path.basename(photo))[0])
            x = onevit_input(self.dump, photo, meta, os.path.join(self.tmp, "photo.npy"))
            with torch.no_grad():
                logits, maps = ref_model.forward_with_attention(torch.from_numpy(x).to(torch.float64))
            ref = attention_rollout(maps[0], cfg.prefix_tokens, cfg.grid).numpy()
            got = np.load(stem + ".npy")
            what = f"rollout {os.path.basename(photo)}"
            if got.dtype != np.float32 or got.shape != cfg.grid:
                self.failures.append(f"{name} {what}: .npy is {got.dtype} {got.shape}, "
                                     f"expected float32 {cfg.grid}")
                continue
            diff = float(np.abs(got.astype(np.float64) - ref).max())
            tol = REL_TOL * float(np.abs(ref).max())
            self.rollout_diffs.append(diff)
            self.row(name, what, diff, tol, diff <= tol)
            if not diff <= tol:
                self.failures.append(f"{name} {what}: max|Δ| {diff:.3e} > {tol:.3e}")
            total = float(got.astype(np.float64).sum())
            if not abs(total - 1) <= SUM_TOL:
                self.failures.append(f"{name} {what}: the .npy sums to {total!r}, not 1 ± {SUM_TOL}")
            with Image.open(stem + ".png") as picture:
                picture.load()
                size, text = picture.size, dict(getattr(picture, "text", {}))
                drawn = np.asarray(picture.convert("RGB"))
            with Image.open(photo) as original:
                photo_size = original.size
            factor = -(-MIN_SHORTER_SIDE // min(photo_size))  # small photos are scaled up by a whole factor
            want = (photo_size[0] * factor, photo_size[1] * factor)
            if size != want:
                self.failures.append(f"{name} {what}: the .png is {size[0]}×{size[1]}, the photo "
                                     f"{photo_size[0]}×{photo_size[1]} shown at {want[0]}×{want[1]}")
            else:
                for problem in outline_problems(drawn, crop_box(photo_size, meta), factor):
                    self.failures.append(f"{name} {what}: {problem}")
            if headless and text.get("Title") != "attention rollout":
                self.failures.append(f"{name} {what}: the .png's Title is {text.get('Title')!r}, "
                                     f"not 'attention rollout'")
            if labels is not None:
                top1 = labels[int(logits[0].argmax())]
                if text.get("Title") != top1:
                    self.failures.append(f"{name} {what}: the .png's Title is {text.get('Title')!r}, "
                                         f"the reference's top-1 is {top1!r}")

    def bad_images(self, ovit: str, good: str) -> None:
        """A missing, an undecodable and a repeated image next to a good one."""
        garbage = os.path.join(self.tmp, "garbage.jpg")
        with open(garbage, "wb") as f:
            f.write(b"\xff\xd8\xff\xe0 not really a JPEG")
        missing = os.path.join(self.tmp, "missing.png")
        out_dir = os.path.join(self.tmp, "bad")
        proc = subprocess.run([self.onevit, "explain", "--model", ovit, "--out", out_dir, missing, good, garbage,
                               good], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=TOOL_ENV)
        errors = proc.stderr.splitlines()
        stem = os.path.join(out_dir, os.path.splitext(os.path.basename(good))[0])
        problems = []
        if proc.returncode != 1:
            problems.append(f"exit status {proc.returncode}, expected 1")
        if len(errors) != 3 or not all(e.startswith("onevit: error: ") for e in errors) or \
                missing not in errors[0] or garbage not in errors[1] or "overwrite" not in errors[2]:
            problems.append(f"stderr is not one error line per bad image (missing, garbage, the good one "
                            f"again: would overwrite), naming it: {proc.stderr!r}")
        if not (os.path.isfile(stem + ".png") and os.path.isfile(stem + ".npy")):
            problems.append("the good image's outputs were not written")
        print(f"{'bad images':<30}{'missing, good, garbage, good':<34}{'':>24}  {'FAIL' if problems else 'ok'}")
        self.failures += [f"bad images: {p}" for p in problems]


def headless_and_tokenless(checker: Checker, convert: str, state: dict, ref_model, photos: list[str],
                           tmp: str) -> None:
    """The ViT-Ti without its head (num_classes 0): the same rollout maps, no label. Without its class
    token (average pooling): refused in one line, since rollout follows the class token."""
    headless = {k: v for k, v in state.items() if not k.startswith("head.")}
    ckpt, ovit = os.path.join(tmp, "headless.safetensors"), os.path.join(tmp, "headless.ovit")
    safetensors_io.save_file(headless, ckpt, metadata={"format": "pt"})
    run_tool([sys.executable, convert, ckpt, "--arch", "vit_tiny_patch16_224", "-o", ovit], "convert.py")
    meta, _ = vit_reference.read_ovit(ovit)
    checker.rollout("random ViT-Ti headless", ovit, ref_model, meta, photos, None, headless=True)

    # As timm builds an average-pooled ViT without a class token: fc_norm after the pooling, no final norm.
    tokenless = {k: v for k, v in state.items() if k not in ("cls_token", "norm.weight", "norm.bias")}
    tokenless["pos_embed"] = state["pos_embed"][:, 1:]
    tokenless["fc_norm.weight"], tokenless["fc_norm.bias"] = state["norm.weight"], state["norm.bias"]
    ckpt, ovit = os.path.join(tmp, "tokenless.safetensors"), os.path.join(tmp, "tokenless.ovit")
    safetensors_io.save_file(tokenless, ckpt, metadata={"format": "pt"})
    run_tool([sys.executable, convert, ckpt, "--heads", "3", "--global-pool", "avg", "-o", ovit], "convert.py")
    proc = subprocess.run([checker.onevit, "explain", "--model", ovit, "--out", os.path.join(tmp, "tokenless"),
                           photos[0]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=TOOL_ENV)
    errors = proc.stderr.splitlines()
    ok = proc.returncode == 1 and len(errors) == 1 and errors[0].startswith("onevit: error: ") and \
        "no class token" in errors[0]
    print(f"{'random ViT-Ti, no class token':<30}{'explain refused in one line':<34}{'':>24}  {'ok' if ok else 'FAIL'}")
    if not ok:
        checker.failures.append(f"no class token: explain should refuse in one line; exit {proc.returncode}, "
                                f"stderr {proc.stderr!r}")


def main(argv=None) -> int:
    ap = argument_parser("attention maps and rollout vs. PyTorch", keep=True)
    ap.add_argument("--preprocess-dump", required=True, help="tests/tools/preprocess_dump binary")
    ap.add_argument("--data", help="shared data directory (default: $ONEVIT_DATA or <repo>/../shared/data)")
    args = ap.parse_args(argv)
    repo = os.path.abspath(args.repo)
    onevit = resolve_onevit(args.onevit, repo)
    convert = resolve_converter(repo)
    dump = os.path.abspath(args.preprocess_dump)
    data = os.path.abspath(args.data or os.environ.get("ONEVIT_DATA")
                           or os.path.join(repo, os.pardir, "shared", "data"))
    set_torch_threads(8)
    repo_photos = [os.path.join(repo, p) for p in REPO_PHOTOS]

    print(f"tolerances: attention max|Δ| ≤ {REL_TOL:g} × max(1, max|ref|); "
          f"rollout max|Δ| ≤ {REL_TOL:g} × max|ref|; .npy sum 1 ± {SUM_TOL:g}")
    print(f"{'model':<30}{'check':<34}{'max|Δ|':>12}{'tolerance':>12}  result")
    with scratch_dir("onevit_explain_", args.keep) as tmp:
        checker = Checker(onevit, dump, tmp)
        for name, (arch, depth, distilled) in RANDOM_MODELS.items():
            state = random_state(depth, distilled)
            ckpt, ovit = os.path.join(tmp, "random.safetensors"), os.path.join(tmp, "random.ovit")
            safetensors_io.save_file(state, ckpt, metadata={"format": "pt"})
            run_tool([sys.executable, convert, ckpt, "--arch", arch, "-o", ovit], "convert.py")
            ref_model = vit_reference.from_timm_state_dict(state, num_heads=3, dtype=torch.float64)
            x = torch.randn((2, 3, 224, 224), generator=torch.Generator().manual_seed(SEED)).numpy()
            checker.attention(name, ovit, ref_model, x)
            meta, _ = vit_reference.read_ovit(ovit)
            checker.rollout(name, ovit, ref_model, meta, repo_photos, None)
            if not distilled:
                headless_and_tokenless(checker, convert, state, ref_model, repo_photos, tmp)
        checker.bad_images(ovit, repo_photos[0])

        ckpt = os.path.join(data, "deit_tiny_patch16_224", "model.safetensors")
        labels_file = os.path.join(data, "labels", "imagenet_classes.txt")
        photos = [os.path.join(data, "images", p) for p in SHARED_PHOTOS]
        if all(os.path.isfile(p) for p in [ckpt, labels_file] + photos):
            name = "DeiT-tiny (real)"
            ovit = os.path.join(tmp, "deit_tiny.ovit")
            run_tool([sys.executable, convert, ckpt, "--arch", "deit_tiny_patch16_224",
                      "--labels", labels_file, "-o", ovit], "convert.py")
            ref_model = vit_reference.from_timm_state_dict(safetensors_io.load_torch(ckpt), num_heads=3,
                                                           dtype=torch.float64)
            with open(labels_file, encoding="utf-8") as f:
                labels = [line.strip() for line in f if line.strip()]
            meta, _ = vit_reference.read_ovit(ovit)
            checker.attention(name, ovit, ref_model,
                              onevit_input(dump, photos[0], meta, os.path.join(tmp, "photo.npy")))
            checker.rollout(name, ovit, ref_model, meta, photos, labels)
        else:
            print(f"(the real DeiT-tiny part is skipped: {data} lacks the checkpoint, labels or photos)")

    worst = max(checker.rollout_diffs, default=float("nan"))
    return report(checker.failures, "attention maps or rollout disagree with the PyTorch reference",
                  f"attention maps and rollout within tolerance (rollout max|Δ| {worst:.3e})")


if __name__ == "__main__":
    sys.exit(exit_status(main))
