#!/usr/bin/python3
"""onevit's own preprocessing of photos, written as one float32 .npy [N, C, H, W] for every engine.

    /usr/bin/python3 bench/peers/onevit_inputs.py --model M.ovit --out X.npy [--crops N --seed S] IMAGE...

Runs under Debian's python3 with onevit's Python module (PYTHONPATH=build/engine/python), so the
peers, which run in their own virtual environment, get exactly the input onevit computes
(`onevit.preprocess`: resize, centre crop, normalise as the model file says); the comparison then
isolates the networks. `--crops N`: instead of one input per photo, N augmented views cycling over
the photos (a random crop of 35-100 % of the area, aspect 3/4-4/3, mirrored half of the time; seed
S), each then preprocessed by onevit: calibration data from photos that are never evaluated.
"""

from __future__ import annotations

import argparse
import random
import sys

import numpy as np
from PIL import Image

import onevit


def augmented_view(photo: Image.Image, rng: random.Random) -> Image.Image:
    """A random crop of 35-100 % of the photo's area (aspect 3/4-4/3), mirrored half of the time."""
    width, height = photo.size
    for _ in range(10):
        area = width * height * rng.uniform(0.35, 1.0)
        aspect = rng.uniform(3 / 4, 4 / 3)
        w, h = round((area * aspect) ** 0.5), round((area / aspect) ** 0.5)
        if w <= width and h <= height:
            left, top = rng.randint(0, width - w), rng.randint(0, height - h)
            view = photo.crop((left, top, left + w, top + h))
            return view.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else view
    return photo


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the .ovit file whose preprocessing to use")
    ap.add_argument("--out", required=True, help="float32 .npy to write")
    ap.add_argument("--crops", type=int, default=0, help="N augmented views instead of one input per photo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("images", nargs="+")
    args = ap.parse_args(argv)
    model = onevit.Model(args.model, threads=1)
    if args.crops:
        rng = random.Random(args.seed)
        photos = [Image.open(path).convert("RGB") for path in args.images]
        inputs = [onevit.preprocess(augmented_view(photos[i % len(photos)], rng), model) for i in range(args.crops)]
    else:
        inputs = [onevit.preprocess(path, model) for path in args.images]
    np.save(args.out, np.stack(inputs).astype(np.float32))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (onevit.Error, OSError, ValueError) as e:
        print(f"onevit_inputs.py: {e}", file=sys.stderr)
        sys.exit(1)
