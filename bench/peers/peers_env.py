"""Where the peers are installed, and running the harness in that environment.

bench/peers/setup.sh makes a virtual environment (default ~/.cache/onevit/peers-venv, or
$ONEVIT_PEERS_VENV). The harness's scripts call `use_peers_venv()` first: run by any other
Python, they re-run themselves with the venv's, so `bench/peers/compare.py` works as typed.
Without the venv they go on with the Python they have: the engines it lacks are skipped.
"""

from __future__ import annotations

import os
import sys

DEFAULT_VENV = os.path.join(os.path.expanduser("~"), ".cache", "onevit", "peers-venv")


def venv_dir() -> str:
    return os.environ.get("ONEVIT_PEERS_VENV") or DEFAULT_VENV


def use_peers_venv() -> None:
    """Re-executes this script with the peers venv's Python when it exists and is not this one."""
    python = os.path.join(venv_dir(), "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv_dir()) or not os.access(python, os.X_OK):
        return
    if os.environ.get("ONEVIT_PEERS_NO_VENV") == "1":
        return
    os.execv(python, [python, os.path.abspath(sys.argv[0]), *sys.argv[1:]])
