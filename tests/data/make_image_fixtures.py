#!/usr/bin/python3
"""Writes the small image fixtures of tests/test_image.cpp into tests/data/images/.

Each `*.expected.png` holds what PIL 9.4 (+ torchvision 0.14 for the crops)
produces from the matching source, so the unit tests check decoding, resizing
and cropping bit for bit without needing Python. Run with /usr/bin/python3
from anywhere; the output is deterministic.
"""
import pathlib
import subprocess
import sys

import numpy as np
import torchvision.transforms as T
from PIL import Image

OUT = pathlib.Path(__file__).resolve().parent / "images"
sys.path.insert(0, str(OUT.parent.parent / "reference"))
from image_writers import bmp, tiff16  # noqa: E402


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

    other_formats(rgb)


def other_formats(rgb):
    """WebP, BMP and TIFF files of src_rgb, each with PIL's decoded pixels (RGB and L) beside it."""
    a = np.asarray(rgb)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray((np.arange(a.shape[0] * a.shape[1]) % 256).astype(np.uint8).reshape(a.shape[:2])))
    q16 = rgb.quantize(16)
    palette16 = np.array(q16.getpalette()[:48]).reshape(16, 3)
    files = {
        "lossy.webp": lambda path: rgb.save(path, quality=80),
        "lossless.webp": lambda path: rgb.save(path, lossless=True),
        "alpha.webp": lambda path: rgba.save(path, quality=80),
        "rgb24.bmp": lambda path: rgb.save(path),
        "palette8.bmp": lambda path: rgb.quantize(256).save(path),
        "palette4.bmp": lambda path: path.write_bytes(bmp(a, 4, palette=palette16, indices=np.asarray(q16))),
        "rgb565.bmp": lambda path: path.write_bytes(bmp(a, 16, compression=3, masks=(0xF800, 0x7E0, 0x1F))),
        "xbgr_topdown.bmp": lambda path: path.write_bytes(
            bmp(a, 32, compression=3, header=108, masks=(0xFF000000, 0xFF0000, 0xFF00, 0), top_down=True)),
        "lzw.tif": lambda path: rgb.save(path, compression="tiff_lzw"),
        "jpeg.tif": lambda path: rgb.save(path, compression="jpeg"),
        "cmyk.tif": lambda path: rgb.convert("CMYK").save(path),
        "rgb16.tif": lambda path: path.write_bytes(tiff16(a, big_endian=True)),
        "tiled.tif": lambda path: subprocess.run(
            ["convert", str(OUT / "src_rgb.png"), "-define", "tiff:tile-geometry=16x16", "-compress", "zip",
             str(path)], check=True),
    }
    for name, write in files.items():
        write(OUT / name)
        with Image.open(OUT / name) as decoded:
            save(decoded.convert("RGB"), f"{name}.rgb.expected.png")
            save(decoded.convert("L"), f"{name}.l.expected.png")


if __name__ == "__main__":
    main()
