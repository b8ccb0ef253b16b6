#!/usr/bin/python3
"""The bundled digits model: onevit classify vs. the PyTorch reference.

Runs `onevit classify --json` on weights/digits_vit.ovit with every
weights/samples/*.png, and computes the reference prediction on the same
pixels at test time: the .ovit file is read by tests/reference/vit_reference.py
(an independent reader of weights/FORMAT.md) and run in float64 on
PIL decode grey -> resize to 32x32 bilinear -> /255 -> (x - 0.5) / 0.5.

Checks per sample: onevit's top-1 index equals the reference's; the top-1
label is the class name the file stores for that index; the top-1 probability
agrees within 5e-3; and the reference's top-1 equals the true label in the file
name (digit_<label>_<test index>.png: weights/train_digits.py keeps only
held-out digits the model classifies correctly).

Usage:
    /usr/bin/python3 tests/digits_test.py --onevit build/apps/onevit
Exit status: 0 pass, 1 a comparison failed, 2 a tool or file is missing/failed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys

_ENV = dict(os.environ)                      # what the tools we run get, unchanged
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch under a busy machine

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
import vit_reference  # noqa: E402

PROB_TOL = 5e-3
NAME = re.compile(r"^digit_(\d+)_(\d+)\.png$")


def resolve_onevit(arg: str | None, repo: str) -> str:
    """--onevit, else $ONEVIT_BIN, else <repo>/build/apps/onevit."""
    given = arg or os.environ.get("ONEVIT_BIN")
    path = os.path.abspath(given or os.path.join(repo, "build", "apps", "onevit"))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        how = "" if given else " (pass --onevit PATH or set ONEVIT_BIN)"
        print(f"FAIL: onevit binary not found or not executable: {path}{how}")
        sys.exit(2)
    return path


def reference_input(path: str, size: int) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        grey = im.convert("L").resize((size, size), Image.BILINEAR)
    x = np.asarray(grey, dtype=np.float32) / np.float32(255.0)
    return ((x - np.float32(0.5)) / np.float32(0.5))[None]          # [1, H, W]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="digits model: onevit classify vs. PyTorch reference")
    ap.add_argument("--onevit", help="path to the onevit binary (default: $ONEVIT_BIN)")
    ap.add_argument("--repo", default=os.path.dirname(HERE), help="repository root")
    ap.add_argument("--model", help="default: <repo>/weights/digits_vit.ovit")
    ap.add_argument("--samples", help="default: <repo>/weights/samples")
    args = ap.parse_args(argv)
    repo = os.path.abspath(args.repo)
    onevit = resolve_onevit(args.onevit, repo)
    model_path = os.path.abspath(args.model or os.path.join(repo, "weights", "digits_vit.ovit"))
    sample_dir = os.path.abspath(args.samples or os.path.join(repo, "weights", "samples"))
    if not os.path.isfile(model_path):
        print(f"FAIL: model not found: {model_path} (made by weights/train_digits.py)")
        return 2
    samples = sorted(glob.glob(os.path.join(sample_dir, "*.png")))
    if not samples:
        print(f"FAIL: no samples in {sample_dir}")
        return 2
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

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

    proc = subprocess.run([onevit, "classify", "--model", model_path, "--json", "--top", "3"]
                          + samples, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=_ENV)
    if proc.returncode != 0:
        print(f"FAIL: onevit classify exited {proc.returncode}\n--- stdout ---\n"
              f"{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
        return 2
    results = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            try:
                rec = json.loads(line)
                results[rec["image"]] = rec["topk"]
            except (ValueError, KeyError, TypeError) as e:
                failures.append(f"unparseable JSON line ({e}): {line[:200]}")

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
        topk = results.get(path)
        o1, op, olabel = None, float("nan"), None
        if not topk:
            problems.append("no onevit result")
        else:
            try:
                o1, op, olabel = int(topk[0]["index"]), float(topk[0]["prob"]), topk[0].get("label")
            except (KeyError, TypeError, ValueError) as e:
                problems.append(f"malformed topk ({e}): {topk!r}"[:200])
        if o1 is not None:
            if o1 != r1:
                problems.append(f"onevit predicts {o1} (p={op:.3f}), reference {r1} (p={rp:.3f})")
            if not abs(op - rp) <= PROB_TOL:
                problems.append(f"top-1 prob {op:.4f} vs reference {rp:.4f}")
            if 0 <= o1 < len(labels) and olabel != labels[o1]:
                problems.append(f"label {olabel!r}, the model file names class {o1} {labels[o1]!r}")
        print(f"{name:<24}{str(true):>6}{r1:>11}{rp:>8.3f}{str(o1):>8}{op:>8.3f}  "
              f"{'ok' if not problems else 'FAIL'}")
        failures += [f"{name}: {p}" for p in problems]

    if failures:
        print("FAIL: digits model check failed:")
        for f in failures:
            print("  " + f)
        return 1
    print(f"PASS: {len(samples)} samples, onevit agrees with the reference and the true labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
