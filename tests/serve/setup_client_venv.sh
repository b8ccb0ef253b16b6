#!/usr/bin/env bash
# Installs the Triton client (tritonclient[http,grpc], from PyPI) into a virtual
# environment for tests/serve/triton_client_test.py: onevit serve is checked by a
# real client of the Open Inference Protocol that this project did not write.
# Only that test needs PyPI; onevit itself builds and runs from Debian's packages.
#
#   tests/serve/setup_client_venv.sh [DIR]      (default: build/serve-client-venv)
#
# Prints DIR/bin/python, the interpreter to run the test with. Reuses DIR when it
# already has the pinned client. Without PyPI it fails within a few minutes (pip's
# timeouts, then `timeout`), saying so, rather than hanging.
set -euo pipefail
dir=${1:-build/serve-client-venv}
client="tritonclient[http,grpc]==2.73.0"
if [[ ! -x $dir/bin/python ]]; then
  /usr/bin/python3 -m venv "$dir" >&2
fi
if ! "$dir/bin/python" -c 'import tritonclient.http, tritonclient.grpc, importlib.metadata as m; assert m.version("tritonclient") == "2.73.0"' 2>/dev/null; then
  if ! timeout 600 "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 20 --retries 2 \
      "$client" >&2; then
    echo "$0: cannot install $client from PyPI into $dir (is https://pypi.org reachable?);" \
      "only tests/serve/triton_client_test.py needs it" >&2
    exit 1
  fi
fi
echo "$dir/bin/python"
