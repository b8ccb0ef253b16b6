"""`cmake --install build` puts a working onevit package where Debian's python3 looks.

Installs the build tree (ONEVIT_BUILD_DIR, set by ctest) with DESTDIR into a
temporary directory, for the default prefix /usr/local, and checks that the
package's directory there, without the DESTDIR, is on Debian python3's
sys.path, and that the staged copy imports and runs from there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREFIX = "/usr/local"


class Install(unittest.TestCase):
    def test_install_into_debian_site_dir(self):
        build = Path(os.environ.get("ONEVIT_BUILD_DIR", REPO / "build"))
        with tempfile.TemporaryDirectory(prefix="onevit_install_") as root:
            env = dict(os.environ, DESTDIR=root)
            subprocess.run(["cmake", "--install", str(build), "--prefix", PREFIX], env=env, check=True,
                           capture_output=True, text=True)
            packages = sorted(Path(root).glob("**/onevit/__init__.py"))
            self.assertEqual(len(packages), 1, packages)
            site = packages[0].parent.parent
            installed = "/" + str(site.relative_to(root))
            self.assertTrue(installed.startswith(PREFIX + "/"), installed)

            # Debian's python3, with no PYTHONPATH, searches that directory.
            clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            search = subprocess.run([sys.executable, "-c", "import sys; print('\\n'.join(sys.path))"], env=clean,
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
