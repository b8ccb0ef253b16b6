#!/usr/bin/python3
"""Checkpoints written by the source libraries themselves (tests/fixtures/*/*/) → onevit, at parity.

Each fixture directory holds a small random model saved by its own library (torchvision,
transformers, open_clip, timm, torch.onnx: tests/fixtures/make_*.py, run in the venv of
tests/fixtures/setup_venv.sh), the library's own outputs on fixed inputs in float64
(reference.npz) and the convert.py arguments (fixture.json). For each:

  1. `weights/convert.py <arguments> -o M.ovit` (no library needed: the fixtures are committed);
  2. the arch.* keys fixture.json names, as expected;
  3. `onevit infer --output [--embedding]` at batch 1 and 3 against the library's logits (or,
     without a classifier, its embedding) and its embedding:
     max|Δ| ≤ 1e-4 × max(1, max|ref|).
A fixture whose fixture.json has "error" (graphs that are no ViT onevit runs) must instead be
refused: exit status 1, one `convert.py: error:` line holding each of those words, no
traceback, no file written.

Usage: /usr/bin/python3 tests/fixtures_test.py --onevit build/apps/onevit [--only torchvision/plain,...] [--keep]
Exit status: 0 pass, 1 a comparison failed, 2 a tool failed.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import REL_TOL, TOOL_ENV, argument_parser, exit_status, parity, report, resolve_converter, \
    resolve_onevit, run_tool, scratch_dir  # noqa: E402  (before torch)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "weights"))
from onevit_convert.ovit_reader import read_ovit  # noqa: E402

FIXTURES = os.path.join(HERE, "fixtures")
# Optional keys FORMAT.md writes only when they differ from these.
DEFAULTS = {"arch.pool_proj": 0, "arch.norm_pre": 0, "arch.class_token": 1, "arch.patch_norm": 0}


def fixtures(only):
    found = sorted(os.path.relpath(os.path.dirname(p), FIXTURES)
                   for p in glob.glob(os.path.join(FIXTURES, "*", "*", "fixture.json")))
    if only:
        missing = set(only) - set(found)
        if missing:
            raise SystemExit(f"FAIL: no fixture {', '.join(sorted(missing))} (have {', '.join(found)})")
        found = [f for f in found if f in only]
    return found


def refused(convert, arguments, model, name, words):
    """The conversion must fail in one error line naming `words`, writing nothing."""
    proc = subprocess.run([sys.executable, convert, *arguments, "-o", model], capture_output=True, text=True,
                          env=TOOL_ENV)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("convert.py: error: ")]
    problems = []
    if proc.returncode != 1 or len(errors) != 1 or "Traceback" in proc.stderr:
        problems.append(f"{name}: expected one error line and exit 1, got exit {proc.returncode}: {proc.stderr[-600:]}")
    elif not all(w in errors[0] for w in words):
        problems.append(f"{name}: the error does not name {words}: {errors[0]}")
    if os.path.exists(model):
        problems.append(f"{name}: a refused conversion wrote {model}")
    print(f"{name:<34}{'':>6}  {'refused':<10}{'':>10}{'':>12}  {'FAIL' if problems else 'ok'}")
    return problems


def main(argv=None) -> int:
    ap = argument_parser(__doc__.split("\n\n")[0], keep=True)
    ap.add_argument("--only", help="comma-separated fixture names (source/case)")
    args = ap.parse_args(argv)
    onevit = resolve_onevit(args.onevit, args.repo)
    convert = resolve_converter(args.repo)
    names = fixtures([n for n in (args.only or "").split(",") if n])
    failures = []
    print(f"tolerance: max|Δ| ≤ {REL_TOL:g} × max(1, max|ref|), the library's own float64 outputs")
    print(f"{'fixture':<34}{'batch':>6}  {'output':<10}{'max|ref|':>10}{'max|Δ|':>12}  result")
    with scratch_dir("onevit_fixtures_", args.keep) as tmp:
        for name in names:
            directory = os.path.join(FIXTURES, name)
            with open(os.path.join(directory, "fixture.json")) as f:
                manifest = json.load(f)
            model = os.path.join(tmp, name.replace("/", "_") + ".ovit")
            arguments = [os.path.join(directory, a) if os.path.exists(os.path.join(directory, a)) else a
                         for a in manifest["convert"]]
            if "error" in manifest:
                failures += refused(convert, arguments, model, name, manifest["error"])
                continue
            run_tool([sys.executable, convert, *arguments, "-o", model], f"convert.py ({name})")
            meta = read_ovit(model).metadata
            for key, want in manifest.get("metadata", {}).items():
                got = meta.get(key, DEFAULTS.get(key))
                if got != want:
                    failures.append(f"{name}: {key} = {got!r}, expected {want!r}")
            ref = np.load(os.path.join(directory, "reference.npz"))
            outputs = manifest["outputs"]
            for batch in (1, 3):
                x = os.path.join(tmp, f"x{batch}.npy")
                np.save(x, ref["input"][:batch])
                files = {k: os.path.join(tmp, f"{k}{batch}.npy") for k in outputs}
                flags = [a for k, path in files.items() for a in (f"--{k}", path)]
                run_tool([onevit, "infer", "--model", model, "--input", x, *flags], f"onevit infer ({name})")
                for k, path in files.items():
                    got, want = np.load(path), ref[f"{outputs[k]}_b{batch}"]
                    if got.shape != want.shape:
                        failures.append(f"{name} b{batch} {k}: shape {got.shape}, the library's {want.shape}")
                        continue
                    p = parity(got, want)
                    print(f"{name:<34}{batch:>6}  {k:<10}{p.ref_max:>10.3f}{p.diff:>12.3e}  {'ok' if p.ok else 'FAIL'}")
                    if not p.ok:
                        failures.append(f"{name} b{batch} {k}: max|Δ| {p.diff:.3e} > {p.tol:.3e}; {p.worst}")
    return report(failures, "converted fixtures differ from their libraries",
                  f"{len(names)} library-written checkpoints at parity, batch 1 and 3")


if __name__ == "__main__":
    sys.exit(exit_status(main))
