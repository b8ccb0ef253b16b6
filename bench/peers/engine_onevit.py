"""onevit as the comparison runs it: its own command line, on the converted model file.

Timing is `onevit bench --json` (the same rule as timing.py: warm-up, then timed requests up to
a count or a time), hint latency (one stream) or, at batch 8, throughput (streams chosen by
onevit for that many threads); logits are `onevit infer`. Each at f32, bf16 and int8 (--precision).
It answers the requests worker.py answers, so compare.py drives it like the peers.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np

import peer_models


class Client:
    name = "onevit"

    def __init__(self, binary: str, prepared: peer_models.Prepared, threads: int, batches: list[int]):
        self.binary = binary
        self.prepared = prepared
        self.threads = threads
        proc = subprocess.run([binary, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.version = proc.stdout.strip().split()[-1] if proc.returncode == 0 and proc.stdout.strip() else "?"
        self.cells = [(p, hint, b) for b in batches for p in ("f32", "bf16", "int8")
                      for hint in (["latency", "throughput"] if b > 1 else ["latency"])]
        self.unavailable = None
        self.last_bench: dict[tuple, dict] = {}

    def _run(self, args: list[str]) -> str:
        proc = subprocess.run([self.binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode:
            raise RuntimeError(f"onevit {args[0]} failed: {proc.stderr.strip()[-300:]}")
        return proc.stdout

    def request(self, op: str, cell: tuple[str, str, int], **kwargs) -> dict:
        precision, hint, batch = cell
        try:
            if op == "logits":
                out = os.path.splitext(kwargs["input"])[0] + f".onevit.{precision}.b{batch}.npy"
                x = np.load(kwargs["input"])
                outputs = []
                for i in range(0, len(x), batch):
                    part = os.path.splitext(kwargs["input"])[0] + ".onevit.part.npy"
                    np.save(part, x[i:i + batch])
                    self._run(["infer", "--model", self.prepared.ovit, "--input", part, "--output", part + ".out.npy",
                               "--precision", precision])
                    outputs.append(np.load(part + ".out.npy"))
                np.save(out, np.concatenate(outputs))
                return {"logits": out}
            if op == "time":
                report = json.loads(self._run([
                    "bench", "--model", self.prepared.ovit, "--batch", str(batch), "--hint", hint,
                    "--threads", str(self.threads), "--precision", precision, "--json",
                    "--warmup", str(kwargs["warmup"]), "--iters", str(kwargs["iterations"]),
                    "--max-seconds", str(kwargs["max_seconds"])]))
                self.last_bench[cell] = report
                one_stream = report["streams"] == 1
                images_per_s = batch * 1e3 / report["latency_ms_median"] if one_stream else report["images_per_s"]
                return {"latency_ms_median": report["latency_ms_median"], "latency_ms_min": report["latency_ms_min"],
                        "latency_ms_max": report["latency_ms_max"], "iterations": report["iterations"],
                        "images_per_s": images_per_s, "efficiency": report["efficiency"],
                        "peak_gflops": report["peak_gflops"], "streams": report["streams"]}
            if op == "details":
                report = self.last_bench.get(cell, {})
                return {"threads": report.get("threads", self.threads), "streams": report.get("streams")}
            return {"error": f"unknown op {op!r}"}
        except (RuntimeError, OSError, ValueError, KeyError) as e:
            return {"error": str(e).splitlines()[0][:400] if str(e) else type(e).__name__}

    def close(self) -> None:
        pass
