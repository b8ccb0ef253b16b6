"""`cmake --install build` puts a working onevit package where the Python it is built for looks.

That Python is ONEVIT_MODULE_PYTHON (set by ctest; else this one). Installs the build tree
(ONEVIT_BUILD_DIR, set by ctest) with DESTDIR into a temporary directory, for the prefix that
Python's own packages go under (/usr/local for Debian's python3, else its sys.prefix), and checks
that the package's directory there, without the DESTDIR, is on that Python's sys.path, and that
the staged copy imports and runs from there (in this Python: it has numpy).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULE_PYTHON = os.environ.get("ONEVIT_MODULE_PYTHON", sys.executable)
# Debian's python3 outside a virtual environment reads /usr/local/lib/python3.X/dist-packages.
PREFIX_QUERY = ("import sys, sysconfig; debian = sys.prefix == sys.base_prefix and "
                "'deb_system' in sysconfig.get_scheme_names(); print('/usr/local' if debian else sys.prefix)")


class Install(unittest.TestCase):
    def test_install_into_the_site_dir(self):
        build = Path(os.environ.get("ONEVIT_BUILD_DIR", REPO / "build"))
        clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        prefix = subprocess.run([MODULE_PYTHON, "-c", PREFIX_QUERY], env=clean, capture_output=True, text=True,
                                check=True).stdout.strip()
        with tempfile.TemporaryDirectory(prefix="onevit_install_") as root:
            env = dict(os.environ, DESTDIR=root)
            subprocess.run(["cmake", "--install", str(build), "--prefix", prefix], env=env, check=True,
                           capture_output=True, text=True)
            packages = sorted(Path(root).glob("**/onevit/__init__.py"))
            self.assertEqual(len(packages), 1, packages)
            site = packages[0].parent.parent
            installed = "/" + str(site.relative_to(root))
            self.assertTrue(installed.startswith(prefix.rstrip("/") + "/"), installed)

            # The module's Python, with no PYTHONPATH, searches that directory.
            search = subprocess.run([MODULE_PYTHON, "-c", "import sys; print('\\n'.join(sys.path))"], env=clean,
                                    capture_output=True, text=True, check=True, cwd=root).stdout.splitlines()
            self.assertIn(installed, search)

            # The installed files import and run (from the DESTDIR copy, not the build tree).
            model = REPO / "weights" / "digits_vit.ovit"
            script = ("import onevit, onevit.dask, numpy as np; m = onevit.Model(%r); "
                      "a = m.info['architecture']; "
                      "x = np.zeros((1, a['channels'], a['image_height'], a['image_width']), np.float32); "
                      "print(onevit.__file__); print(m.run(x).shape == (1, a['num_classes']))") % str(model)
            result = subprocess.run([sys.executable, "-c", script], env=dict(clean, PYTHONPATH=str(site)),
                                    capture_output=True, text=True, cwd=root)
            self.assertEqual(result.returncode, 0, result.stderr)
            imported_from, logits_shape_ok = result.stdout.splitlines()
            self.assertTrue(imported_from.startswith(str(site)), imported_from)
            self.assertEqual(logits_shape_ok, "True")
            for name in ("__init__.pyi", "py.typed", "dask.py"):
                self.assertTrue((site / "onevit" / name).is_file(), name)


if __name__ == "__main__":
    unittest.main()
