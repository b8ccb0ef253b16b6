#!/usr/bin/python3
"""PyTorch's compiled f32 and PT2E int8 against onevit's int8 in CPU time on one core: a comparison
that a busy machine does not skew as it skews compare.py's wall-clock images/s.

    bench/peers/cpu_time.py --preset issue22 [--batch 1,8] [--iters 15]

One thread, pinned to one CPU. PyTorch: engine_torch.py's cells f32/compile, int8/pt2e and
int8/pt2e-bf16 (compiled as compare.py compiles them, refused the same way if PT2E is not lowered
to int8 kernels), each timed in process CPU time per request: the fastest of --iters after 3
warm-ups (the median goes to the JSON lines). onevit: `onevit bench --precision int8
--emulate-threads 1 --json` (its one_core_ms: the plan timed phase by phase in thread CPU time,
each phase at its fastest over the runs, so if anything a little kinder to onevit than PyTorch's
fastest whole request). Prints ms an image and onevit's speed-up over PT2E's best; JSON lines
follow. The models come from compare.py's work directory (prepared there if missing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peers_env  # noqa: E402

peers_env.use_peers_venv()

import numpy as np  # noqa: E402

import compare  # noqa: E402
import peer_models  # noqa: E402

CELLS = [("f32", "compile"), ("int8", "pt2e"), ("int8", "pt2e-bf16")]


def torch_cells(prepared, batches: list[int], iters: int) -> list[dict]:
    import engine_torch
    engine = engine_torch.Engine(prepared, 1)
    check = np.load(prepared.check)
    out = []
    for batch in batches:
        x = np.ascontiguousarray(np.resize(check, (batch, *check.shape[1:])))
        for precision, config in CELLS:
            record = {"engine": "pytorch", "model": prepared.spec.label, "precision": precision, "config": config,
                      "batch": batch}
            try:
                forward = engine.run(precision, config, batch)
                tensor = engine_torch.torch.from_numpy(x)
                for _ in range(3):
                    forward(tensor)
                cpu = []
                for _ in range(iters):
                    c0 = time.process_time()
                    forward(tensor)
                    cpu.append(time.process_time() - c0)
                record["cpu_ms_per_image"] = min(cpu) * 1e3 / batch
                record["cpu_ms_per_image_median"] = statistics.median(cpu) * 1e3 / batch
                record["details"] = engine.details(precision, config, batch)
            except Exception as e:  # noqa: BLE001  (a refused PT2E cell is reported, the rest go on)
                record["error"] = f"{type(e).__name__}: {e}"[:400]
            out.append(record)
    return out


def onevit_cells(onevit: str, prepared, batches: list[int]) -> list[dict]:
    out = []
    for batch in batches:
        proc = subprocess.run([onevit, "bench", "-m", prepared.ovit, "-p", "int8", "-b", str(batch),
                               "--emulate-threads", "1", "--json"], stdout=subprocess.PIPE, text=True, check=True)
        answer = json.loads(proc.stdout)
        out.append({"engine": "onevit", "model": prepared.spec.label, "precision": "int8", "config": "one-core",
                    "batch": batch, "cpu_ms_per_image": answer["one_core_ms"] / batch,
                    "efficiency": answer.get("efficiency")})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[], help="as compare.py's --model")
    ap.add_argument("--preset", choices=sorted(compare.PRESETS))
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--iters", type=int, default=15)
    ap.add_argument("--calibration", type=int, default=300, help="as compare.py's (the same saved PT2E model)")
    compare.add_common_arguments(ap)
    args = ap.parse_args(argv)
    compare.resolve_onevit(args)
    batches = [int(b) for b in args.batch.split(",")]
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:1])
    os.environ["OMP_NUM_THREADS"] = "1"
    records = []
    for text in args.model + compare.PRESETS.get(args.preset, []):
        spec = peer_models.parse_model(text)
        prepared = peer_models.prepare(spec, args.work, args.build, args.photos, args.calibration, need_onnx=False)
        records += torch_cells(prepared, batches, args.iters) + onevit_cells(args.onevit, prepared, batches)
    print(f"{'model':<12} {'b':>2} {'f32 compile':>11} {'pt2e':>8} {'pt2e-bf16':>9} {'onevit int8':>11} "
          f"{'onevit ÷ best PT2E':>18}   (CPU ms an image, one core)")
    for model in dict.fromkeys(r["model"] for r in records):
        for batch in batches:
            ms = {(r["engine"], r["config"]): r.get("cpu_ms_per_image") for r in records
                  if (r["model"], r["batch"]) == (model, batch)}
            pt2e = [v for k, v in ms.items() if k[1].startswith("pt2e") and v]
            ours = ms.get(("onevit", "one-core"))
            cells = [ms.get(("pytorch", c)) for c in ("compile", "pt2e", "pt2e-bf16")] + [ours]
            ratio = f"{min(pt2e) / ours:.2f}x" if pt2e and ours else "-"
            print(f"{model:<12} {batch:>2} " + " ".join(f"{c:{w}.2f}" if c else f"{'-':>{w}}" for c, w in
                                                      zip(cells, (11, 8, 9, 11))) + f" {ratio:>18}")
    print("\n".join(json.dumps(r) for r in records))
    if args.out:
        compare.save_lines(records, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
