"""weights/convert.py run in this process as if the engine ran every model-file feature.

The converter refuses, by name, the features its engine does not run yet
(weights/onevit_convert/features.py); the modern fixtures and the registry sweep also check
the files it would write for them, against the forward pass the format describes
(ovit_v2_reference.py), so that the mapping is proven before the engine runs a feature.
"""

import contextlib
import io
import os
import sys


def convert(repo, argv):
    """convert.main(argv) with every feature allowed: (exit status, stderr)."""
    sys.path.insert(0, os.path.join(repo, "weights"))
    import convert as cli
    from onevit_convert import features
    saved = features.ENGINE_SUPPORTED
    features.ENGINE_SUPPORTED = frozenset(features.FEATURES)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(list(argv))
    finally:
        features.ENGINE_SUPPORTED = saved
    return code, err.getvalue()
