#!/usr/bin/python3
"""The bundled digits model: onevit classify vs. the PyTorch reference.

Runs `onevit classify --json` on weights/digits_vit.ovit with every
weights/samples/*.png, and computes the reference prediction on the same
pixels at test time: the .ovit file is read by tests/reference/vit_reference.py
(an independent reader of weights/FORMAT.md) and run in float64 on
PIL decode grey -> resize to 32x32 bilinear -> /255 -> (x - 0.5) / 0.5.

Checks per sample: onevit's top-1 index equals the reference's; the top-1
label is the class name the file stores for that index; the top-1 probability
agrees within 5e-3; the top 3 come in decreasing probability; and the
reference's top-1 equals the true label in the file name
(digit_<label>_<test index>.png: weights/train_digits.py keeps only held-out
digits the model classifies correctly).

Usage:
    /usr/bin/python3 tests/digits_test.py --onevit build/apps/onevit
Exit status: 0 pass, 1 a comparison failed, 2 a tool or file is missing/failed.
"""

from __future__ import annotations

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import (add_digits_arguments, argument_parser, classify_json,  # noqa: E402
                     digits_model_and_samples, exit_status, report, resolve_onevit, run_tool,
                     set_torch_threads, top1_problems)  # before torch

import numpy as np  # noqa: E402
import torch  # noqa: E402

import vit_reference  # noqa: E402

PROB_TOL = 5e-3
TOP = 3
NAME = re.compile(r"^digit_(\d+)_(\d+)\.png$")


def reference_input(path: str, size: int) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        grey = im.convert("L").resize((size, size), Image.BILINEAR)
    x = np.asarray(grey, dtype=np.float32) / np.float32(255.0)
    return ((x - np.float32(0.5)) / np.float32(0.5))[None]          # [1, H, W]


def main(argv=None) -> int:
    ap = argument_parser("digits model: onevit classify vs. PyTorch reference")
    add_digits_arguments(ap)
    args = ap.parse_args(argv)
    repo = os.path.abspath(args.repo)
    onevit = resolve_onevit(args.onevit, repo)
    model_path, samples = digits_model_and_samples(args, repo)
    set_torch_threads(2)

    failures = []
    model, meta = vit_reference.from_ovit(model_path, dtype=torch.float64)
    cfg = model.cfg
    recipe = {"arch.channels": 1, "preprocess.resize": "direct",
              "preprocess.interpolation": "bilinear"}
    for key, want in recipe.items():
        if meta.get(key) != want:
            failures.append(f"model metadata {key} = {meta.get(key)!r}, expected {want!r}")
    for key in ("preprocess.mean", "preprocess.std"):
        if not np.allclose(meta.get(key, [np.nan]), [0.5], rtol=0, atol=1e-7):
            failures.append(f"model metadata {key} = {meta.get(key)!r}, expected [0.5]")
    if cfg.image_size[0] != cfg.image_size[1]:
        failures.append(f"expected a square model input, got {cfg.image_size}")
    labels = meta.get("labels")
    if labels is None or len(labels) != cfg.num_classes:
        failures.append(f"model labels {labels!r}: expected {cfg.num_classes} names")
        labels = [str(i) for i in range(cfg.num_classes)]

    x = torch.from_numpy(np.stack([reference_input(p, cfg.image_size[0]) for p in samples]))
    with torch.no_grad():
        ref = vit_reference.softmax(model(x.to(torch.float64)).numpy())

    out = run_tool([onevit, "classify", "--model", model_path, "--json", "--top", str(TOP)] + samples,
                   "onevit classify")
    results = classify_json(out, failures, samples)

    print(f"{'sample':<24}{'true':>6}{'reference':>11}{'p':>8}{'onevit':>8}{'p':>8}  result")
    for i, path in enumerate(samples):
        name = os.path.basename(path)
        m = NAME.match(name)
        true = int(m.group(1)) if m else None
        r1 = int(np.argmax(ref[i]))
        rp = float(ref[i, r1])
        problems = []
        if true is None:
            problems.append("file name is not digit_<label>_<index>.png")
        elif r1 != true:
            problems.append(f"reference predicts {r1} (p={rp:.3f}) for a {true}: the shipped "
                            f"model and samples disagree (re-run weights/train_digits.py)")
        (o1, op, _), onevit_problems = top1_problems(results.get(path), ref[i], labels,
                                                     prob_tol=PROB_TOL, top=TOP)
        problems += onevit_problems
        print(f"{name:<24}{str(true):>6}{r1:>11}{rp:>8.3f}{str(o1):>8}{op:>8.3f}  "
              f"{'ok' if not problems else 'FAIL'}")
        failures += [f"{name}: {p}" for p in problems]

    return report(failures, "digits model check failed",
                  f"{len(samples)} samples, onevit agrees with the reference and the true labels")


if __name__ == "__main__":
    sys.exit(exit_status(main))
