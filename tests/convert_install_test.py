#!/usr/bin/python3
"""`cmake --install` gives an installed user the converter: the command onevit-convert.

Installs the build tree with DESTDIR into a temporary directory (prefix /usr/local), then runs
the staged bin/onevit-convert: --help, a conversion of a small random timm checkpoint whose
file must be byte-identical to weights/convert.py's, and an error, which it reports under its
own name. The staged tree is then moved, and the launcher still finds its package.

Usage: /usr/bin/python3 tests/convert_install_test.py --build build
Exit status: 0 pass, 1 a check failed, 2 a tool failed.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))
from random_vit import random_vit_state  # noqa: E402
import safetensors_io  # noqa: E402


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    args = ap.parse_args()
    failures = []
    with tempfile.TemporaryDirectory(prefix="onevit_convert_install_") as root:
        installed = run(["cmake", "--install", args.build, "--prefix", "/usr/local"], env=dict(os.environ, DESTDIR=root))
        if installed.returncode != 0:
            print(f"FAIL: cmake --install: {installed.stderr}")
            return 2
        command = os.path.join(root, "usr", "local", "bin", "onevit-convert")
        if not os.access(command, os.X_OK):
            print(f"FAIL: no executable {command}")
            return 1
        help_text = run([command, "--help"])
        if help_text.returncode != 0 or "usage: " not in help_text.stdout:
            failures.append(f"onevit-convert --help: exit {help_text.returncode}, {help_text.stderr[-500:]}")
        checkpoint = os.path.join(root, "model.safetensors")
        safetensors_io.save_file(random_vit_state(32, 2, mlp_dim=64, num_classes=10, seed=5, patch=8, grid_tokens=16),
                                 checkpoint)
        ours = os.path.join(root, "installed.ovit")
        reference = os.path.join(root, "source.ovit")
        converted = run([command, checkpoint, "--heads", "2", "-o", ours], cwd=root)
        source = run([sys.executable, os.path.join(REPO, "weights", "convert.py"), checkpoint, "--heads", "2",
                      "-o", reference])
        if converted.returncode != 0 or source.returncode != 0:
            failures.append(f"conversion failed: installed {converted.stderr[-500:]!r}, source {source.stderr[-500:]!r}")
        else:
            with open(ours, "rb") as a, open(reference, "rb") as b:
                if a.read() != b.read():
                    failures.append("the installed converter's file differs from weights/convert.py's")
        error = run([command, os.path.join(root, "missing.pth"), "-o", ours])
        if error.returncode != 1 or not error.stderr.startswith("onevit-convert: error: "):
            failures.append(f"an error is not one 'onevit-convert: error:' line: exit {error.returncode}, "
                            f"{error.stderr!r}")
        # Moved elsewhere, the launcher still finds its package beside it.
        moved = os.path.join(root, "elsewhere")
        shutil.move(os.path.join(root, "usr", "local"), moved)
        again = run([os.path.join(moved, "bin", "onevit-convert"), "--help"])
        if again.returncode != 0:
            failures.append(f"moved install: onevit-convert --help failed: {again.stderr[-500:]}")
    if failures:
        print("FAIL: the installed converter:")
        for f in failures:
            print("  " + f)
        return 1
    print("PASS: cmake --install gives a working onevit-convert")
    return 0


if __name__ == "__main__":
    sys.exit(main())
