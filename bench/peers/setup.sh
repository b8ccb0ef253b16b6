#!/bin/sh
# Installs the peers onevit is compared with (bench/peers/compare.py) into a virtual
# environment outside the repository, from PyPI: OpenVINO + NNCF, ONNX Runtime,
# PyTorch 2 (+ torchao for PT2E int8), timm and onnx for the models.
#
#   bench/peers/setup.sh [VENV]       default: $ONEVIT_PEERS_VENV, else ~/.cache/onevit/peers-venv
#
# The venv's Python is Debian's python3 (the one onevit's Python module is built for).
# Versions are pinned so that a table can be reproduced; PEERS_UNPINNED=1 takes the newest.
set -eu
VENV=${1:-${ONEVIT_PEERS_VENV:-$HOME/.cache/onevit/peers-venv}}
case "$VENV" in
    "$(cd "$(dirname "$0")/../.." && pwd)"/*) echo "setup.sh: keep the venv outside the repository ($VENV)" >&2; exit 2 ;;
esac
PACKAGES="openvino==2026.4.1 nncf==3.4.0 onnxruntime==1.31.1 onnx==1.23.2 onnxscript==0.7.2
          torch==2.15.0 torchao==0.18.0 torchvision==0.29.2 timm==1.0.31 safetensors==0.8.0 pillow"
[ "${PEERS_UNPINNED:-0}" = 1 ] && PACKAGES=$(echo "$PACKAGES" | sed 's/==[^ ]*//g')
if [ ! -x "$VENV/bin/python" ]; then
    /usr/bin/python3 -m venv "$VENV" || { echo "setup.sh: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086  # a list of requirements
"$VENV/bin/python" -m pip install --quiet $PACKAGES
"$VENV/bin/python" - <<'PY'
import importlib
for name in ("openvino", "nncf", "onnxruntime", "torch", "torchao", "timm", "onnx"):
    module = importlib.import_module(name)
    print(f"{name:12} {getattr(module, '__version__', '?')}")
PY
echo "peers venv: $VENV  (bench/peers/compare.py finds it there, or set ONEVIT_PEERS_VENV)"
