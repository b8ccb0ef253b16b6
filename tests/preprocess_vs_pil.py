#!/usr/bin/python3
"""Compares onevit's image decoding and preprocessing with PIL + torchvision.

    /usr/bin/python3 tests/preprocess_vs_pil.py PREPROCESS_DUMP [IMAGE_DIR ...]

PREPROCESS_DUMP is the tests/tools/preprocess_dump binary. Every .jpg/.jpeg
under the image directories (default <repo>/../shared/data/images, recursively)
is decoded and preprocessed by onevit and by PIL 9.4 + torchvision 0.14 with
the DeiT, HF, timm augreg and timm squash recipes. Differences are measured in grey levels
(tensor difference × std × 255). The run fails if, for any image, the decoded
pixels or a recipe's output differ by more than 1 grey level on average.
"""
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import torchvision.transforms as T
from PIL import Image

MAX_MEAN_ABS_DIFF = 1.0  # grey levels
# The real photos beside the checkout, as a developer's checkout and CI have them.
REPO = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_IMAGE_DIRS = [str(REPO.parent / "shared" / "data" / "images")]

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
BICUBIC, BILINEAR = T.InterpolationMode.BICUBIC, T.InterpolationMode.BILINEAR

# name: (resize mode, resize_size, interpolation, mean, std, torchvision resize)
RECIPES = {
    "deit (256 -> crop 224, bicubic, imagenet)": (
        "shorter_then_crop", 256, "bicubic", IMAGENET_MEAN, IMAGENET_STD,
        [T.Resize(256, interpolation=BICUBIC), T.CenterCrop(224)]),
    "hf (direct 224, bilinear, 0.5)": (
        "direct", 0, "bilinear", HALF, HALF,
        [T.Resize((224, 224), interpolation=BILINEAR)]),
    "timm augreg (248 -> crop 224, bicubic, 0.5)": (
        "shorter_then_crop", 248, "bicubic", HALF, HALF,
        [T.Resize(248, interpolation=BICUBIC), T.CenterCrop(224)]),
    "timm squash (235x235 -> crop 224, bicubic, 0.5)": (
        "squash_then_crop", 235, "bicubic", HALF, HALF,
        [T.Resize((235, 235), interpolation=BICUBIC), T.CenterCrop(224)]),
}


def run_dump(tool, args, out):
    result = subprocess.run([tool, *args, str(out)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{tool} {' '.join(args)} failed: {result.stderr.strip()}")
    return np.load(out)


class Stats:
    def __init__(self):
        self.mads, self.max_abs, self.exact, self.failures = [], 0.0, 0, []

    def add(self, image, diff):
        mad = float(np.abs(diff).mean())
        self.mads.append(mad)
        self.max_abs = max(self.max_abs, float(np.abs(diff).max()))
        self.exact += int(not diff.any())
        if mad > MAX_MEAN_ABS_DIFF:
            self.failures.append(f"{image}: mean abs diff {mad:.4f} grey levels")

    def line(self, name):
        if not self.mads:
            return f"{name:46s} images   0"
        return (f"{name:46s} images {len(self.mads):3d}  bit-exact {self.exact:3d}  "
                f"mean MAD {np.mean(self.mads):.5f}  worst MAD {max(self.mads):.5f}  "
                f"max abs {self.max_abs:.3f}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    tool = sys.argv[1]
    dirs = sys.argv[2:] or DEFAULT_IMAGE_DIRS
    images = sorted(p for d in dirs for p in pathlib.Path(d).rglob("*")
                    if p.suffix.lower() in (".jpg", ".jpeg"))
    if not images:
        sys.exit(f"FAIL: no .jpg/.jpeg images under {', '.join(dirs)}")

    decode_stats = Stats()
    recipe_stats = {name: Stats() for name in RECIPES}
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "out.npy"
        for path in images:
            pil = Image.open(path).convert("RGB")
            ours = run_dump(tool, ["decode", str(path)], out)
            decode_stats.add(path, ours - np.asarray(pil, dtype=np.float32))

            for name, (mode, size, interp, mean, std, resize) in RECIPES.items():
                ref = T.Compose([*resize, T.ToTensor(), T.Normalize(mean, std)])(pil).numpy()
                args = ["preprocess", str(path), "--resize", mode, "--resize-size", str(size),
                        "--height", "224", "--width", "224", "--interpolation", interp,
                        "--mean", ",".join(map(str, mean)), "--std", ",".join(map(str, std))]
                ours = run_dump(tool, args, out)
                if ours.shape != ref.shape:
                    recipe_stats[name].failures.append(
                        f"{path}: shape {ours.shape}, expected {ref.shape}")
                    continue
                scale = np.asarray(std, dtype=np.float32).reshape(3, 1, 1) * 255
                recipe_stats[name].add(path, (ours - ref) * scale)

    print(decode_stats.line("decode (vs PIL convert('RGB'))"))
    for name, stats in recipe_stats.items():
        print(stats.line(name))
    failures = decode_stats.failures + [f for s in recipe_stats.values() for f in s.failures]
    if failures:
        print(f"FAIL: more than {MAX_MEAN_ABS_DIFF} grey level mean abs diff vs PIL/torchvision:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print(f"OK: {len(images)} images within {MAX_MEAN_ABS_DIFF} grey level of PIL/torchvision")


if __name__ == "__main__":
    main()
