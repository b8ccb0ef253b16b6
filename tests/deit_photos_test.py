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

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

_ENV = dict(os.environ)                      # what the tools we run get, unchanged
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch under a busy machine (ctest -j)

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
import safetensors_io  # noqa: E402
import vit_reference  # noqa: E402

PROB_TOL = 1e-2
TOP = 5
SKIP = 77


def resolve_onevit(arg: str | None, repo: str) -> str:
    """--onevit, else $ONEVIT_BIN, else <repo>/build/apps/onevit."""
    given = arg or os.environ.get("ONEVIT_BIN")
    path = os.path.abspath(given or os.path.join(repo, "build", "apps", "onevit"))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        how = "" if given else " (pass --onevit PATH or set ONEVIT_BIN)"
        print(f"FAIL: onevit binary not found or not executable: {path}{how}")
        sys.exit(2)
    return path


def run_tool(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=_ENV)
    if proc.returncode != 0:
        print(f"FAIL: {what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
              f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
        sys.exit(2)
    return proc.stdout


def find_photos(root: str) -> list[str]:
    out = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.lower().endswith((".jpg", ".jpeg")):
                out.append(os.path.join(dirpath, f))
    return sorted(out)


def reference_probs(model, photos: list[str]) -> np.ndarray:
    from PIL import Image
    import torchvision.transforms as T
    transform = T.Compose([
        T.Resize(256, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(224),
        T.ToTensor(),
        T.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    ])
    batch = []
    for path in photos:
        with Image.open(path) as im:
            batch.append(transform(im.convert("RGB")))
    x = torch.stack(batch).to(torch.float64)
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 8]) for i in range(0, len(x), 8)])
    return vit_reference.softmax(logits.numpy())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="DeiT-tiny on real photos: onevit vs. PyTorch")
    ap.add_argument("--onevit", help="path to the onevit binary (default: $ONEVIT_BIN)")
    ap.add_argument("--repo", default=os.path.dirname(HERE), help="repository root")
    ap.add_argument("--data", help="shared data directory (default: $ONEVIT_DATA or <repo>/../shared/data)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)

    repo = os.path.abspath(args.repo)
    data = os.path.abspath(args.data or os.environ.get("ONEVIT_DATA")
                           or os.path.join(repo, os.pardir, "shared", "data"))
    ckpt = os.path.join(data, "deit_tiny_patch16_224", "model.safetensors")
    labels_file = os.path.join(data, "labels", "imagenet_classes.txt")
    image_dir = os.path.join(data, "images")
    missing = [p for p in (ckpt, labels_file, image_dir) if not os.path.exists(p)]
    if missing:
        print(f"SKIP: shared data not found: {', '.join(missing)}")
        return SKIP
    onevit = resolve_onevit(args.onevit, repo)
    convert = os.path.join(repo, "weights", "convert.py")
    photos = find_photos(image_dir)
    if not photos:
        print(f"SKIP: no .jpg/.jpeg photos under {image_dir}")
        return SKIP
    with open(labels_file, encoding="utf-8") as f:
        labels = [line.strip() for line in f if line.strip()]
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))

    model = vit_reference.from_timm_state_dict(safetensors_io.load_torch(ckpt), num_heads=3,
                                               eps=1e-6, gelu="erf", dtype=torch.float64)
    if model.cfg.num_classes != len(labels):
        print(f"FAIL: {len(labels)} labels for {model.cfg.num_classes} classes")
        return 1
    ref = reference_probs(model, photos)

    tmp = tempfile.mkdtemp(prefix="onevit_deit_")
    try:
        ovit = os.path.join(tmp, "deit_tiny.ovit")
        run_tool([sys.executable, convert, ckpt, "--arch", "deit_tiny_patch16_224",
                  "--labels", labels_file, "-o", ovit], "convert.py")
        out = run_tool([onevit, "classify", "--model", ovit, "--top", str(TOP), "--json"] + photos,
                       "onevit classify")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    results, failures = {}, []
    for line in out.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            results[rec["image"]] = rec["topk"]
        except (ValueError, KeyError, TypeError) as e:
            failures.append(f"unparseable JSON line ({e}): {line[:200]}")

    def short(path):
        return os.path.relpath(path, image_dir)

    print(f"{'photo':<52}{'reference top-1':>28}{'prob':>8}   {'onevit top-1':<26}{'prob':>8}"
          f"{'|Δp|':>9}  result")
    for i, path in enumerate(photos):
        order = np.argsort(-ref[i])
        r1, r2 = int(order[0]), int(order[1])
        rp = float(ref[i, r1])
        topk = results.get(path)
        if topk is None:
            failures.append(f"{short(path)}: no JSON line with \"image\": {path!r}")
            print(f"{short(path):<52}{labels[r1]:>28}{rp:>8.4f}   {'(missing)':<26}")
            continue
        problems = []
        try:
            o1 = int(topk[0]["index"])
            op = float(topk[0]["prob"])
            olabel = topk[0].get("label")
        except (IndexError, KeyError, TypeError, ValueError) as e:
            failures.append(f"{short(path)}: malformed topk ({e}): {topk!r}"[:300])
            continue
        if len(topk) != TOP:
            problems.append(f"{len(topk)} topk entries, asked for {TOP}")
        probs = [float(t.get("prob", -1)) for t in topk]
        if any(a < b for a, b in zip(probs, probs[1:])):
            problems.append(f"topk not in decreasing probability: {probs}")
        if o1 != r1:
            margin = rp - float(ref[i, r2])
            problems.append(f"top-1 index {o1} ({labels[o1] if 0 <= o1 < len(labels) else '?'}), "
                            f"reference {r1} ({labels[r1]}, p={rp:.4f}, margin to #2 "
                            f"{labels[r2]} {margin:.4f}); onevit's class has reference p="
                            f"{float(ref[i, o1]) if 0 <= o1 < len(labels) else float('nan'):.4f}")
        dp = abs(op - rp)
        if dp > PROB_TOL:
            problems.append(f"top-1 prob {op:.4f} vs reference {rp:.4f}: |Δ| {dp:.4f} > {PROB_TOL}")
        if 0 <= o1 < len(labels) and olabel != labels[o1]:
            problems.append(f"top-1 label {olabel!r}, labels file says {labels[o1]!r}")
        print(f"{short(path):<52}{labels[r1]:>28}{rp:>8.4f}   {str(olabel):<26}{op:>8.4f}"
              f"{dp:>9.4f}  {'ok' if not problems else 'FAIL'}")
        failures += [f"{short(path)}: {p}" for p in problems]
    extra = set(results) - set(photos)
    if extra:
        failures.append(f"JSON lines for images not asked for: {sorted(extra)[:5]}")

    if failures:
        print("FAIL: onevit disagrees with the PyTorch reference on DeiT-tiny:")
        for f in failures:
            print("  " + f)
        return 1
    print(f"PASS: {len(photos)} photos, identical top-1, top-1 prob within {PROB_TOL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
