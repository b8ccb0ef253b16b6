#!/usr/bin/python3
"""onevit's WebP, BMP and TIFF decoding against PIL's, bit for bit.

    /usr/bin/python3 tests/decode_formats_vs_pil.py PREPROCESS_DUMP [--photos DIR]

The photos (default ../shared/data/images, else tests/data/images) are written
in WebP, BMP and TIFF — by PIL, and in the layouts PIL does not write by
ImageMagick's `convert` and by hand (BMP headers and masks) — and each file
is decoded by `preprocess_dump decode` (RGB and --grey) and by PIL 9.4
(Image.open(f).convert("RGB" / "L")). Every pixel must be equal. Layouts
onevit refuses (run-length BMP, planar or float TIFF) must be refused in one
line naming the layout.

Exit status: 0 pass, 1 a check failed, 2 a tool failed.
"""

from __future__ import annotations

import io
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "reference"))
from image_writers import bmp, tiff16  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
PHOTO_DIRS = [REPO.parent / "shared" / "data" / "images", REPO / "tests" / "data" / "images"]
# Photos each variant is made of: the first few (variants × photos files, two decodes each).
PHOTOS_PER_VARIANT = 3


def photos(directory: pathlib.Path | None) -> list[pathlib.Path]:
    for d in [directory] if directory else PHOTO_DIRS:
        found = sorted(p for p in d.glob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
        if found:
            return found
    sys.exit(f"FAIL: no .jpg photos in {directory or PHOTO_DIRS}")


def small(image: Image.Image, side: int = 320) -> Image.Image:
    """The photo scaled down (a few hundred pixels a side keep the run short), odd sizes kept odd."""
    scale = side / max(image.size)
    return image.resize((max(1, round(image.width * scale)) | 1, max(1, round(image.height * scale)))) \
        if scale < 1 else image


def with_alpha(rgb: Image.Image) -> Image.Image:
    """RGBA: a diagonal alpha ramp, 0 to 255, so every alpha value appears."""
    x, y = np.meshgrid(np.arange(rgb.width), np.arange(rgb.height))
    alpha = ((x + y) * 255 // max(1, rgb.width + rgb.height - 2)).astype(np.uint8)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


def pil_save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def magick(image: Image.Image, tmp: pathlib.Path, name: str, *arguments: str) -> bytes:
    """ImageMagick's convert of the PNG of image with arguments, to name (its extension picks the format)."""
    source, target = tmp / "magick_in.png", tmp / name
    image.save(source)
    subprocess.run(["convert", str(source), *arguments, str(target)], check=True, capture_output=True, timeout=120)
    return target.read_bytes()


def variants(photo: Image.Image, tmp: pathlib.Path):
    """(name, file bytes) of every layout onevit decodes as PIL does."""
    rgb = small(photo.convert("RGB"))
    rgba = with_alpha(rgb)
    grey = rgb.convert("L")
    pal = rgb.quantize(256)
    a = np.asarray(rgb)
    # WebP, by PIL (libwebp): lossy, lossless, with alpha, an animation's first frame.
    yield "lossy.webp", pil_save(rgb, "WEBP", quality=80)
    yield "lossless.webp", pil_save(rgb, "WEBP", lossless=True)
    yield "alpha.webp", pil_save(rgba, "WEBP", quality=70)
    yield "animated.webp", pil_save(rgb, "WEBP", save_all=True, append_images=[grey.convert("RGB")], duration=100)
    # BMP: what PIL writes (24-bit, 8-bit grey and palette, 1-bit, 32-bit) ...
    yield "rgb24.bmp", pil_save(rgb, "BMP")
    yield "grey8.bmp", pil_save(grey, "BMP")
    yield "palette8.bmp", pil_save(pal, "BMP")
    yield "mono1.bmp", pil_save(grey.convert("1"), "BMP")
    yield "rgba32.bmp", pil_save(rgba, "BMP")
    # ... and by hand: top-down, OS/2 and v5 headers, 16-bit 5-5-5 / 5-6-5, 32-bit masks, 4-bit palette.
    yield "topdown24.bmp", bmp(a, 24, top_down=True)
    yield "os2_24.bmp", bmp(a, 24, header=12)
    yield "v5_24.bmp", bmp(a, 24, header=124)
    yield "rgb555.bmp", bmp(a, 16)
    yield "rgb565.bmp", bmp(a, 16, compression=3, masks=(0xF800, 0x7E0, 0x1F))
    yield "xbgr32.bmp", bmp(a, 32, compression=3, header=108, masks=(0xFF000000, 0xFF0000, 0xFF00, 0))
    yield "rgba32_masks.bmp", bmp(a, 32, compression=3, header=124, masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000))
    q16 = rgb.quantize(16)
    palette16 = np.array(q16.getpalette()[:48]).reshape(16, 3)
    yield "palette4.bmp", bmp(a, 4, palette=palette16, indices=np.asarray(q16))
    yield "palette4_short.bmp", bmp(a, 4, palette=palette16[:9], indices=np.asarray(q16))  # indices past it: grey
    # TIFF, by PIL (libtiff): compressions, grey, 1-bit, palette, RGBA, CMYK.
    for compression in ("raw", "tiff_lzw", "tiff_adobe_deflate", "packbits", "jpeg"):
        yield f"rgb_{compression}.tif", pil_save(rgb, "TIFF", compression=compression)
    yield "grey.tif", pil_save(grey, "TIFF", compression="tiff_lzw")
    yield "mono.tif", pil_save(grey.convert("1"), "TIFF")
    yield "palette.tif", pil_save(pal, "TIFF")
    yield "rgba.tif", pil_save(rgba, "TIFF", compression="tiff_adobe_deflate")
    yield "cmyk.tif", pil_save(rgb.convert("CMYK"), "TIFF")
    # ... by hand: 16-bit RGB, both byte orders ...
    yield "rgb16_le.tif", tiff16(a, big_endian=False)
    yield "rgb16_be.tif", tiff16(a, big_endian=True)
    # ... and by ImageMagick: tiles, JPEG-compressed YCbCr, min-is-white, 4-bit grey, associated alpha.
    yield "tiled.tif", magick(rgb, tmp, "tiled.tif", "-define", "tiff:tile-geometry=64x64", "-compress", "lzw")
    yield "ycbcr_jpeg.tif", magick(rgb, tmp, "ycbcr.tif", "-colorspace", "YCbCr", "-compress", "jpeg")
    yield "ycbcr420_jpeg.tif", magick(rgb, tmp, "ycbcr420.tif", "-colorspace", "YCbCr", "-sampling-factor", "2x2",
                                      "-compress", "jpeg")
    yield "miniswhite.tif", magick(grey, tmp, "miniswhite.tif", "-define", "quantum:polarity=min-is-white")
    yield "grey4.tif", magick(grey, tmp, "grey4.tif", "-colorspace", "gray", "-depth", "4")
    yield "associated_alpha.tif", magick(rgba, tmp, "assoc.tif", "-define", "tiff:alpha=associated")


def refused(photo: Image.Image, tmp: pathlib.Path):
    """(name, bytes, words the one-line refusal must contain) of layouts onevit refuses."""
    rgb = small(photo.convert("RGB"), 64)
    yield "rle8.bmp", _rle_bmp(rgb), "run-length"
    yield "planar.tif", magick(rgb, tmp, "planar.tif", "-interlace", "plane"), "planar"
    yield "float.tif", magick(rgb, tmp, "float.tif", "-define", "quantum:format=floating-point", "-depth",
                              "32"), "unsigned"


def _rle_bmp(rgb: Image.Image) -> bytes:
    """An 8-bit run-length BMP (compression 1): one run of index 1 per row, end of bitmap."""
    width, height = rgb.size
    width = min(width, 255)
    rows = b"".join(bytes([width, 1, 0, 0]) for _ in range(height)) + b"\0\1"
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(rows), 0, 0, 256, 0)
    offset = 14 + 40 + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + info + palette + rows


def dump(tool: str, path: pathlib.Path, grey: bool, out: pathlib.Path) -> tuple[np.ndarray | None, str]:
    proc = subprocess.run([tool, "decode", str(path), str(out), *(["--grey"] if grey else [])],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return None, proc.stderr
    return np.load(out).astype(np.uint8), ""


def main() -> int:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    tool = sys.argv[1]
    directory = pathlib.Path(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--photos" else None
    if not shutil.which("convert"):
        print("FAIL: ImageMagick's convert is needed (Debian: imagemagick)")
        return 2
    failures, checked, counts = [], 0, {}
    with tempfile.TemporaryDirectory(prefix="onevit_formats_") as tmp:
        tmp = pathlib.Path(tmp)
        out = tmp / "out.npy"
        for photo_path in photos(directory)[:PHOTOS_PER_VARIANT]:
            photo = Image.open(photo_path)
            for name, data in variants(photo, tmp):
                path = tmp / f"{photo_path.stem}_{name}"
                path.write_bytes(data)
                for grey in (False, True):
                    reference = np.asarray(Image.open(path).convert("L" if grey else "RGB"))
                    ours, error = dump(tool, path, grey, out)
                    checked += 1
                    what = f"{path.name} ({'grey' if grey else 'RGB'})"
                    if ours is None:
                        failures.append(f"{what}: onevit refused it: {error.strip()}")
                    elif ours.shape[:2] != reference.shape[:2]:
                        failures.append(f"{what}: shape {ours.shape}, PIL {reference.shape}")
                    else:
                        diff = np.abs(ours.reshape(reference.shape).astype(int) - reference.astype(int))
                        if diff.any():
                            failures.append(f"{what}: {np.count_nonzero(diff)} values differ from PIL's, "
                                            f"by up to {diff.max()}")
                        else:
                            counts[name] = counts.get(name, 0) + 1
            for name, data, words in refused(photo, tmp):
                path = tmp / f"{photo_path.stem}_{name}"
                path.write_bytes(data)
                ours, error = dump(tool, path, False, out)
                if ours is not None or words not in error or error.count("\n") != 1:
                    failures.append(f"{path.name}: want a one-line refusal naming '{words}', got "
                                    f"{'pixels' if ours is not None else repr(error)}")
    print(f"{checked} decodes compared with PIL; bit-exact per layout: "
          + ", ".join(f"{name} {n}" for name, n in counts.items()))
    for failure in failures:
        print(f"FAIL: {failure}")
    print("FAIL" if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
