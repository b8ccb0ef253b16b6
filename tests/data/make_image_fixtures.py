#!/usr/bin/python3
"""Writes the small image fixtures of tests/test_image.cpp into tests/data/images/.

Each `*.expected.png` holds what PIL 9.4 (+ torchvision 0.14 for the crops)
produces from the matching source, so the unit tests check decoding, resizing
and cropping bit for bit without needing Python. Run with /usr/bin/python3
from anywhere; the output is deterministic.
"""
import pathlib

import numpy as np
import torchvision.transforms as T
from PIL import Image

OUT = pathlib.Path(__file__).resolve().parent / "images"


def source_rgb():
    # A smooth gradient with noise and one hard edge: exercises the bicubic
    # overshoot clipping without being incompressible.
    rng = np.random.default_rng(20240601)
    y, x = np.mgrid[0:30, 0:40]
    base = np.stack([x * 6, y * 8, (x + y) * 3], axis=-1).astype(np.float64)
    base[:, 20:] += 90
    noise = rng.integers(-25, 26, size=base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def save(image, name):
    image.save(OUT / name, optimize=True)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rgb = source_rgb()
    save(rgb, "src_rgb.png")
    save(rgb.convert("L"), "src_rgb.l.expected.png")

    # Image.resize, as torchvision calls it (no reducing_gap).
    filters = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}
    for mode, image in (("rgb", rgb), ("l", rgb.convert("L"))):
        for fname, f in filters.items():
            for w, h in ((17, 13), (57, 41), (40, 11), (17, 30)):
                save(image.resize((w, h), f), f"resize_{mode}_{fname}_{w}x{h}.expected.png")

    # torchvision Resize(19) + CenterCrop: 40x30 -> 25x19, then crops that
    # need round-half-to-even offsets (16x16) and zero padding (24 wide, 28 high).
    for crop in ((16, 16), (28, 24)):
        t = T.Compose([T.Resize(19, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(crop)])
        save(t(rgb), f"crop_19_{crop[0]}x{crop[1]}.expected.png")

    # JPEGs as PIL writes them (4:2:0 subsampling), and PIL's decoded pixels.
    jpegs = {
        "baseline.jpg": dict(image=rgb, quality=85),
        "progressive.jpg": dict(image=rgb, quality=85, progressive=True),
        "grey.jpg": dict(image=rgb.convert("L"), quality=85),
        "cmyk.jpg": dict(image=rgb.convert("CMYK"), quality=90),
    }
    for name, args in jpegs.items():
        image = args.pop("image")
        image.save(OUT / name, **args)
        with Image.open(OUT / name) as decoded:
            save(decoded.convert("RGB"), f"{name}.rgb.expected.png")
            save(decoded.convert("L"), f"{name}.l.expected.png")


if __name__ == "__main__":
    main()
