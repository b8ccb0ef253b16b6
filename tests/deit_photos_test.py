#!/usr/bin/python3
"""Real photos through the pretrained DeiT-tiny: onevit classify vs. PyTorch.

Reference pipeline (facebookresearch/deit eval transform):
    PIL open -> convert('RGB') -> Resize(256, BICUBIC) -> CenterCrop(224)
    -> ToTensor -> Normalize(ImageNet mean/std) -> tests/reference/vit_reference.py (float64)
onevit pipeline:
    weights/convert.py model.safetensors --arch deit_tiny_patch16_224
        --labels imagenet_classes.txt -o deit.ovit
    onevit classify --model deit.ovit --json --top 5 <every .jpg/.jpeg under images/>

Checks per photo: the same top-1 class index; top-1 probability within 1e-2
absolute (onevit decodes and resizes on its own, to within a grey level of
PIL); the JSON top-1 `label` is the labels file's name for that index.

Usage:
    /usr/bin/python3 tests/deit_photos_test.py --onevit build/apps/onevit [--data DIR]
The data directory defaults to $ONEVIT_DATA, else <repo>/../shared/data.
Exit status: 0 pass, 1 a comparison failed, 2 a tool failed, 77 data not found (skip).
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import (argument_parser, classify_json, exit_status, report,  # noqa: E402
                     resolve_converter, resolve_onevit, run_tool, scratch_dir,
                     set_torch_threads, top1_problems)  # before torch

import numpy as np  # noqa: E402
import torch  # noqa: E402

import safetensors_io  # noqa: E402
import vit_reference  # noqa: E402
from shared_photos import (SKIP, add_data_argument, data_dir, find_photos, float64_logits,  # noqa: E402
                           reference_batch)

PROB_TOL = 1e-2
TOP = 5


def reference_probs(model, photos: list[str]) -> np.ndarray:
    return vit_reference.softmax(float64_logits(model, reference_batch(photos), chunk=8))


def main(argv=None) -> int:
    ap = argument_parser("DeiT-tiny on real photos: onevit vs. PyTorch", keep=True)
    add_data_argument(ap)
    args = ap.parse_args(argv)

    repo = os.path.abspath(args.repo)
    data = data_dir(args, repo)
    ckpt = os.path.join(data, "deit_tiny_patch16_224", "model.safetensors")
    labels_file = os.path.join(data, "labels", "imagenet_classes.txt")
    image_dir = os.path.join(data, "images")
    missing = [p for p in (ckpt, labels_file, image_dir) if not os.path.exists(p)]
    if missing:
        print(f"SKIP: shared data not found: {', '.join(missing)}")
        return SKIP
    onevit = resolve_onevit(args.onevit, repo)
    convert = resolve_converter(repo)
    photos = find_photos(image_dir)
    if not photos:
        print(f"SKIP: no .jpg/.jpeg photos under {image_dir}")
        return SKIP
    with open(labels_file, encoding="utf-8") as f:
        labels = [line.strip() for line in f if line.strip()]
    set_torch_threads(8)

    model = vit_reference.from_timm_state_dict(safetensors_io.load_torch(ckpt), num_heads=3,
                                               eps=1e-6, gelu="erf", dtype=torch.float64)
    if model.cfg.num_classes != len(labels):
        print(f"FAIL: {len(labels)} labels for {model.cfg.num_classes} classes")
        return 1
    ref = reference_probs(model, photos)

    with scratch_dir("onevit_deit_", args.keep) as tmp:
        ovit = os.path.join(tmp, "deit_tiny.ovit")
        run_tool([sys.executable, convert, ckpt, "--arch", "deit_tiny_patch16_224",
                  "--labels", labels_file, "-o", ovit], "convert.py")
        out = run_tool([onevit, "classify", "--model", ovit, "--top", str(TOP), "--json"] + photos,
                       "onevit classify")

    failures = []
    results = classify_json(out, failures, photos)

    def short(path):
        return os.path.relpath(path, image_dir)

    print(f"{'photo':<52}{'reference top-1':>28}{'prob':>8}   {'onevit top-1':<26}{'prob':>8}"
          f"{'|Δp|':>9}  result")
    for i, path in enumerate(photos):
        r1 = int(np.argmax(ref[i]))
        rp = float(ref[i, r1])
        (o1, op, olabel), problems = top1_problems(results.get(path), ref[i], labels,
                                                   prob_tol=PROB_TOL, top=TOP)
        shown = str(olabel) if o1 is not None else "(missing)"
        print(f"{short(path):<52}{labels[r1]:>28}{rp:>8.4f}   {shown:<26}{op:>8.4f}"
              f"{abs(op - rp):>9.4f}  {'ok' if not problems else 'FAIL'}")
        failures += [f"{short(path)}: {p}" for p in problems]

    return report(failures, "onevit disagrees with the PyTorch reference on DeiT-tiny",
                  f"{len(photos)} photos, identical top-1, top-1 prob within {PROB_TOL}")


if __name__ == "__main__":
    sys.exit(exit_status(main))
