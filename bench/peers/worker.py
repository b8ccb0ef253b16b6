"""One peer engine in a process of its own, driven by compare.py through JSON lines.

    python worker.py ENGINE PREPARED_JSON THREADS BATCHES

ENGINE: pytorch, onnxruntime or openvino (engine_*.py). Each engine runs alone in its own
process, pinned to the same CPUs as every other engine, so that no engine's thread pool or
library version meets another's. The first line out is {"version", "cells"} or {"unavailable":
why} (the engine's package is not installed); then, per request line in, one line out:
  {"op": "logits", "cell": [precision, config, batch], "input": X.npy}  -> {"logits": Y.npy}
      (X in chunks of `batch`, the last padded; Y beside X)
  {"op": "time", "cell": [...], "warmup": W, "iterations": N, "max_seconds": S} -> timing.summary
  {"op": "details", "cell": [...]}  -> what the engine chose (threads, streams, precision)
A cell the engine cannot run answers {"skipped": why} or {"error": message}. The protocol has a
file descriptor of its own: what the libraries print goes to stderr.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_models  # noqa: E402

PR_SET_PDEATHSIG = 1  # <sys/prctl.h>
MODULES = {"pytorch": ("engine_torch", "torch"), "onnxruntime": ("engine_ort", "onnxruntime"),
           "openvino": ("engine_openvino", "openvino")}


def chunked(engine, cell, x: np.ndarray) -> np.ndarray:
    precision, config, batch = cell
    outputs = []
    for i in range(0, len(x), batch):
        part = x[i:i + batch]
        padded = np.concatenate([part, np.zeros((batch - len(part), *part.shape[1:]), part.dtype)])
        outputs.append(np.asarray(engine.logits(precision, config, batch, np.ascontiguousarray(padded)))[:len(part)])
    return np.concatenate(outputs).astype(np.float32)


def serve(engine, request: dict, check: np.ndarray) -> dict:
    precision, config, batch = request["cell"]
    reason = engine.skipped(precision, config)
    if reason:
        return {"skipped": reason}
    if request["op"] == "logits":
        out = os.path.splitext(request["input"])[0] + f".{engine.name}.{precision}.{config}.b{batch}.npy"
        np.save(out, chunked(engine, request["cell"], np.load(request["input"])))
        return {"logits": out}
    if request["op"] == "time":
        x = np.ascontiguousarray(np.resize(check, (batch, *check.shape[1:])))
        return engine.time(precision, config, batch, x, warmup=request["warmup"],
                           iterations=request["iterations"], max_seconds=request["max_seconds"])
    if request["op"] == "details":
        return engine.details(precision, config, batch)
    return {"error": f"unknown op {request['op']!r}"}


def main() -> int:
    name, prepared_json, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    batches = [int(b) for b in sys.argv[4].split(",")]
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # dies with compare.py, even mid-compile
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    send = lambda message: protocol.write(json.dumps(message) + "\n")  # noqa: E731
    module_name, package = MODULES[name]
    try:
        importlib.import_module(package)
    except ImportError as e:
        send({"unavailable": f"{package} is not installed here ({e}); bench/peers/setup.sh installs it"})
        return 0
    fields = json.loads(prepared_json)
    fields["spec"] = peer_models.ModelSpec(**fields["spec"])
    fields["reference"] = np.load(os.path.join(fields["dir"], "reference.npy"))
    prepared = peer_models.Prepared(**fields)
    engine = importlib.import_module(module_name).Engine(prepared, threads)
    send({"version": engine.version, "cells": engine.cells(batches)})
    check = np.load(prepared.check)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            send(serve(engine, request, check))
        except Exception as e:  # noqa: BLE001  (any engine failure: reported for this cell, the rest go on)
            traceback.print_exc()
            send({"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:400]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
