"""What the Python end-to-end tests (tests/*_test.py) and bench/*.py share.

Finding the onevit binary, running a tool (the converter, onevit) and failing
with its output, the common command-line options, the scratch directory, the
`classify --json` reader, the parity check of an output against the
reference, the per-image top-1 check against the reference and the closing
FAIL/PASS report.

Importing this module has one side effect, on purpose: it records the
environment as it was (TOOL_ENV, what the tools we run get) and then sets
OMP_WAIT_POLICY=PASSIVE unless it is set, so import it before torch: under a
busy machine (a parallel build, ctest -j) libgomp's spinning threads make
torch many times slower.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import typing

TOOL_ENV = dict(os.environ)                  # what the tools we run get, unchanged
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL_FAILED = 2                              # exit status when a tool fails or is missing


class ToolError(RuntimeError):
    """A tool we ran failed; the message has its command line and output."""


def resolve_onevit(arg: str | None, repo: str) -> str:
    """--onevit, else $ONEVIT_BIN, else <repo>/build/apps/onevit."""
    given = arg or os.environ.get("ONEVIT_BIN")
    path = os.path.abspath(given or os.path.join(repo, "build", "apps", "onevit"))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        how = "" if given else " (pass --onevit PATH or set ONEVIT_BIN)"
        print(f"FAIL: onevit binary not found or not executable: {path}{how}")
        sys.exit(TOOL_FAILED)
    return path


def resolve_converter(repo: str) -> str:
    """<repo>/weights/convert.py, which must exist."""
    path = os.path.join(repo, "weights", "convert.py")
    if not os.path.isfile(path):
        print(f"FAIL: converter not found: {path}")
        sys.exit(TOOL_FAILED)
    return path


def run_tool(cmd: list[str], what: str, env: dict[str, str] | None = None) -> str:
    """Runs cmd with env (default TOOL_ENV) and returns its stdout; ToolError if it exits non-zero."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=TOOL_ENV if env is None else env)
    if proc.returncode != 0:
        raise ToolError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
    return proc.stdout


def exit_status(main, argv=None) -> int:
    """main(argv)'s exit status, with a ToolError reported as FAIL and exit 2."""
    try:
        return main(argv)
    except ToolError as e:
        print(f"FAIL: {e}")
        return TOOL_FAILED


def argument_parser(description: str, *, keep: bool = False, **kwargs) -> argparse.ArgumentParser:
    """A parser with --onevit and --repo (and --keep, for a scratch directory).

    kwargs go to argparse.ArgumentParser."""
    ap = argparse.ArgumentParser(description=description, **kwargs)
    ap.add_argument("--onevit", help="path to the onevit binary (default: $ONEVIT_BIN)")
    ap.add_argument("--repo", default=REPO, help="repository root")
    if keep:
        ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return ap


def add_digits_arguments(ap: argparse.ArgumentParser) -> None:
    """--model and --samples: the bundled digits model and its sample images."""
    ap.add_argument("--model", help="default: <repo>/weights/digits_vit.ovit")
    ap.add_argument("--samples", help="folder of .png images (default: <repo>/weights/samples)")


def digits_model_and_samples(args: argparse.Namespace, repo: str, *,
                             min_samples: int = 1) -> tuple[str, list[str]]:
    """The --model file and the sorted *.png under --samples; FAIL (exit 2) if missing."""
    model = os.path.abspath(args.model or os.path.join(repo, "weights", "digits_vit.ovit"))
    sample_dir = os.path.abspath(args.samples or os.path.join(repo, "weights", "samples"))
    if not os.path.isfile(model):
        print(f"FAIL: model not found: {model} (made by weights/train_digits.py)")
        sys.exit(TOOL_FAILED)
    samples = sorted(glob.glob(os.path.join(sample_dir, "*.png")))
    if len(samples) < min_samples:
        print(f"FAIL: need at least {min_samples} .png sample(s) in {sample_dir}, found {len(samples)}")
        sys.exit(TOOL_FAILED)
    return model, samples


def set_torch_threads(most: int) -> None:
    """torch.set_num_threads: the CPU count, 1 to `most`."""
    import torch
    torch.set_num_threads(max(1, min(most, os.cpu_count() or 1)))


@contextlib.contextmanager
def scratch_dir(prefix: str, keep: bool):
    """A temporary directory, removed afterwards unless `keep` (then its path is printed)."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        yield tmp
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def readme_block(repo: str, language: str) -> str:
    """The first ```language block of README.md (the examples CI compiles and runs)."""
    text = open(os.path.join(repo, "README.md"), encoding="utf-8").read()
    match = re.search(rf"```{re.escape(language)}\n(.*?)```", text, re.S)
    if not match:
        raise AssertionError(f"README.md has no ```{language} block")
    return match.group(1)


def classify_json(stdout: str, failures: list[str], images: list[str]) -> dict:
    """`onevit classify --json` output for `images` -> {image path: topk list}.

    Unparseable lines, and lines for images not asked for, go to failures."""
    results = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            results[rec["image"]] = rec["topk"]
        except (ValueError, KeyError, TypeError) as e:
            failures.append(f"unparseable JSON line ({e}): {line[:200]}")
    extra = set(results) - set(images)
    if extra:
        failures.append(f"JSON lines for images not asked for: {sorted(extra)[:5]}")
    return results


# The parity bound of every end-to-end check: max|onevit − reference| ≤ REL_TOL · max(1, max|reference|).
REL_TOL = 1e-4
# At --precision bf16 (8 significant bits per matmul input), the bound of issue 11.
BF16_REL_TOL = 2e-2


def onednn_implementations(stdout: str) -> tuple[str, list[str]]:
    """A tool's stdout under ONEDNN_VERBOSE=2: (stdout without oneDNN's lines, "primitive implementation"
    of every primitive created). An implementation starting with `ref` is oneDNN's slow fallback loop."""
    rest, impls = [], []
    for line in stdout.splitlines():
        if line.startswith(("onednn_verbose", "dnnl_verbose")):
            fields = line.split(",")
            if len(fields) > 5 and fields[1].startswith("create"):
                impls.append(f"{fields[3]} {fields[4]}")
        else:
            rest.append(line)
    return "\n".join(rest), impls


class Parity(typing.NamedTuple):
    ref_max: float  # max|reference|
    diff: float     # max|onevit − reference|; inf where onevit's output is not finite
    tol: float      # REL_TOL · max(1, ref_max)
    worst: str      # where |onevit − reference| is largest, and both values there

    @property
    def ok(self) -> bool:
        return self.diff <= self.tol


def parity(got, ref, rel_tol: float = REL_TOL) -> Parity:
    """onevit's output against the reference's (same shape; ref in float64)."""
    import numpy as np
    ref_max = float(np.abs(ref).max())
    error = np.abs(got.astype(np.float64) - ref)
    diff = float(error.max()) if np.all(np.isfinite(got)) else float("inf")
    at = np.unravel_index(np.argmax(error), ref.shape)  # the first NaN, if any
    worst = f"worst at {tuple(int(i) for i in at)}: onevit {got[at]:.6f}, reference {ref[at]:.6f}"
    return Parity(ref_max, diff, rel_tol * max(1.0, ref_max), worst)


def top1_problems(topk, ref_probs, labels: list[str], *, prob_tol: float,
                  top: int) -> tuple[tuple[int | None, float, str | None], list[str]]:
    """One image's `classify --json` topk against the reference's class probabilities.

    Checks: a result with `top` entries in decreasing probability; its top-1 is
    the reference's top-1 class, with probability within prob_tol; its label is
    labels[index]. Returns onevit's top-1 (index, prob, label), or (None, nan,
    None) where there is none, and the problems found.
    """
    import numpy as np
    order = np.argsort(-np.asarray(ref_probs), kind="stable")
    r1, r2 = int(order[0]), int(order[1])
    rp = float(ref_probs[r1])
    none = (None, float("nan"), None)
    if not topk:
        return none, ["no onevit result (no JSON line with this \"image\")"]
    try:
        o1, op, olabel = int(topk[0]["index"]), float(topk[0]["prob"]), topk[0].get("label")
        probs = [float(t.get("prob", -1)) for t in topk]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as e:
        return none, [f"malformed topk ({e}): {topk!r}"[:300]]
    problems = []
    if len(topk) != top:
        problems.append(f"{len(topk)} topk entries, asked for {top}")
    if any(a < b for a, b in zip(probs, probs[1:])):
        problems.append(f"topk not in decreasing probability: {probs}")
    known = 0 <= o1 < len(labels)
    if o1 != r1:
        margin = rp - float(ref_probs[r2])
        problems.append(f"top-1 index {o1} ({labels[o1] if known else '?'}), "
                        f"reference {r1} ({labels[r1]}, p={rp:.4f}, margin to #2 "
                        f"{labels[r2]} {margin:.4f}); onevit's class has reference p="
                        f"{float(ref_probs[o1]) if known else float('nan'):.4f}")
    dp = abs(op - rp)
    if not dp <= prob_tol:
        problems.append(f"top-1 prob {op:.4f} vs reference {rp:.4f}: |Δ| {dp:.4f} > {prob_tol}")
    if known and olabel != labels[o1]:
        problems.append(f"top-1 label {olabel!r}, the labels say {labels[o1]!r}")
    return (o1, op, olabel), problems


def report(failures: list[str], fail_title: str, pass_line: str) -> int:
    """Prints `FAIL: fail_title:` and each failure (exit status 1), else `PASS: pass_line` (0)."""
    if failures:
        print(f"FAIL: {fail_title}:")
        for f in failures:
            print("  " + f)
        return 1
    print(f"PASS: {pass_line}")
    return 0
