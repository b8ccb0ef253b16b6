#!/usr/bin/python3
"""onevit against OpenVINO, ONNX Runtime and PyTorch 2 on the same weights, in one interleaved run.

    bench/peers/setup.sh                                   # once: the peers, into a venv
    bench/peers/compare.py --model random:vit_b16 [--model random:vit_ti16 ...]
    bench/peers/compare.py --model ../shared/data/deit_tiny_patch16_224/model.safetensors \\
        --arch deit_tiny_patch16_224
    bench/peers/compare.py --preset high-res               # ViT-S/16 224 & 512, ViT-B/16 224 & 384

Every engine at every precision it offers, in its vendor's documented configuration
(engine_*.py), batch 1 and 8, `--threads` threads (2), the whole run pinned to the same CPUs:
first each cell's logits on 8 photos against the float64 PyTorch reference (max |Δlogit|, top-1
agreement), then `--rounds` rounds in which every cell is timed once, cells of the same batch and
precision next to each other, so a slow spell of a shared machine hits them all; each cell's
figure is the median over the rounds. Prints, per model, every cell, then the best configuration
of each engine per precision with onevit's speed-up over it (marked where below the targets of
issue 22: 1.1x OpenVINO, 1.3x ONNX Runtime and PyTorch), and onevit's efficiency per precision.
JSON lines (one per cell, after one describing the run) go to stdout and, with --out, to a file;
`--tables FILE` prints the tables of such a file again.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peers_env  # noqa: E402

peers_env.use_peers_venv()

import numpy as np  # noqa: E402

import engine_onevit  # noqa: E402
import peer_models  # noqa: E402

ENGINES = ("onevit", "openvino", "onnxruntime", "pytorch")
TARGETS = {"openvino": 1.1, "onnxruntime": 1.3, "pytorch": 1.3}
PRESETS = {"high-res": ["random:vit_s16", "random:vit_s16@512", "random:vit_b16", "random:vit_b16@384"],
           "issue22": ["random:vit_ti16", "random:vit_s16", "random:vit_b16"]}
PRECISIONS = ("f32", "bf16", "int8")


class WorkerClient:
    """A peer engine in its own process (worker.py)."""

    def __init__(self, name: str, prepared: peer_models.Prepared, threads: int, batches: list[int]):
        self.name = name
        fields = {k: v for k, v in vars(prepared).items() if k != "reference"}
        fields["spec"] = vars(prepared.spec)
        self.log_path = os.path.join(prepared.dir, f"{name}.log")
        self.log = open(self.log_path, "w")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "worker.py"), name, json.dumps(fields), str(threads),
             ",".join(map(str, batches))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        hello = self._read()
        self.unavailable = hello.get("unavailable") or hello.get("error")
        self.version = hello.get("version", "")
        self.cells = [tuple(c) for c in hello.get("cells", [])]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"{self.name} worker exited (exit {self.proc.wait()}); see {self.log_path}"}
        return json.loads(line)

    def request(self, op: str, cell, **kwargs) -> dict:
        if self.proc.poll() is not None:
            return {"error": f"{self.name} worker is gone; see {self.log_path}"}
        self.proc.stdin.write(json.dumps({"op": op, "cell": list(cell), **kwargs}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()
        self.log.close()


def pin(threads: int) -> list[int]:
    """This process and all it starts on the first `threads` CPUs it may use."""
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cpus)
    return cpus


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def ordered(clients, batches, precisions=PRECISIONS) -> list[tuple]:
    """Every (client, cell) of these batches and precisions, those of one batch and precision next
    to each other."""
    pairs = [(c, cell) for c in clients for cell in c.cells if cell[2] in batches and cell[0] in precisions]
    key = lambda pair: (pair[1][2], PRECISIONS.index(pair[1][0]), ENGINES.index(pair[0].name))  # noqa: E731
    return sorted(pairs, key=key)


def check_logits(client, cell, prepared) -> dict:
    answer = client.request("logits", cell, input=prepared.check)
    if "logits" not in answer:
        return answer
    got = np.load(answer["logits"]).astype(np.float64)
    ref = prepared.reference
    return {"max_abs_dlogit": float(np.abs(got - ref).max()) if np.all(np.isfinite(got)) else float("inf"),
            "max_abs_logit": float(np.abs(ref).max()),
            "top1_agreement": float((got.argmax(1) == ref.argmax(1)).mean())}


def run_model(spec, args, log) -> list[dict]:
    prepared = peer_models.prepare(spec, args.work, args.build, args.photos, args.calibration,
                                   need_onnx=any(e in args.engines for e in ("openvino", "onnxruntime")))
    batches = args.batch
    clients, unavailable = [], []
    for name in args.engines:
        client = (engine_onevit.Client(args.onevit, prepared, args.threads, batches) if name == "onevit"
                  else WorkerClient(name, prepared, args.threads, batches))
        if client.unavailable:
            log(f"{name}: skipped: {client.unavailable}")
            unavailable.append({"kind": "engine", "model": spec.label, "engine": name,
                                "unavailable": client.unavailable})
            client.close()
            continue
        clients.append(client)
    records: dict[tuple, dict] = {}
    try:
        for client, cell in ordered(clients, batches, args.precision):
            precision, config, batch = cell
            record = {"kind": "cell", "model": spec.label, "engine": client.name, "version": client.version,
                      "precision": precision, "config": config, "batch": batch, "threads": args.threads}
            t0 = time.perf_counter()
            record.update(check_logits(client, cell, prepared))
            record["prepare_s"] = round(time.perf_counter() - t0, 1)
            records[(client.name, cell)] = record
            status = record.get("skipped") or record.get("error")
            log(f"  {spec.label} {client.name} {precision}/{config} b{batch}: " +
                (status if status else f"max|Δlogit| {record['max_abs_dlogit']:.4f} "
                                       f"(of max|logit| {record['max_abs_logit']:.2f}), "
                                       f"top-1 agreement {record['top1_agreement']:.3f}, {record['prepare_s']} s"))
        live = [(c, cell) for c, cell in ordered(clients, batches, args.precision)
                if "max_abs_dlogit" in records[(c.name, cell)]]
        rule = {"warmup": args.warmup, "iterations": args.iters, "max_seconds": args.max_seconds}
        for r in range(args.rounds):
            for client, cell in live:
                answer = client.request("time", cell, **rule)
                record = records[(client.name, cell)]
                if "images_per_s" not in answer:
                    record["error"] = answer.get("error") or answer.get("skipped")
                    continue
                record.setdefault("rounds", []).append(answer)
            log(f"  {spec.label}: round {r + 1}/{args.rounds} done")
        for client, cell in live:
            record = records[(client.name, cell)]
            rounds = record.get("rounds", [])
            if rounds:
                record["images_per_s"] = statistics.median(a["images_per_s"] for a in rounds)
                record["latency_ms"] = statistics.median(a["latency_ms_median"] for a in rounds)
                if "efficiency" in rounds[0]:
                    record["efficiency"] = statistics.median(a["efficiency"] for a in rounds)
            record["details"] = client.request("details", cell)
    finally:
        for client in clients:
            client.close()
    return unavailable + list(records.values())


def best(records: list[dict], model: str, batch: int, precision: str, engine: str) -> dict | None:
    cells = [r for r in records if (r["model"], r["batch"], r["precision"], r["engine"]) == (model, batch, precision, engine)
             and "images_per_s" in r]
    return max(cells, key=lambda r: r["images_per_s"]) if cells else None


def needed_efficiency(ours: dict, theirs: dict, target: float) -> float | None:
    """The efficiency (GFLOP/s ÷ the matmul peak) onevit would need for target × the peer's images/s:
    above 1, out of reach of anything but faster matmuls."""
    rounds = [r for r in ours.get("rounds", []) if r.get("efficiency") and r.get("peak_gflops")]
    if not rounds:
        return None
    gflop_per_image = statistics.median(r["efficiency"] * r["peak_gflops"] / r["images_per_s"] for r in rounds)
    peak = statistics.median(r["peak_gflops"] for r in rounds)
    return target * theirs["images_per_s"] * gflop_per_image / peak


def print_tables(records: list[dict], engines: list[str], out) -> None:
    print(f"{'model':<24} {'b':>2} {'prec':<5} {'engine':<12} {'config':<11} {'img/s':>9} {'ms':>9} "
          f"{'max|Δlogit|':>11} {'agree':>6}", file=out)
    for r in records:
        if r["kind"] != "cell":
            continue
        speed = (f"{r['images_per_s']:9.2f} {r['latency_ms']:9.2f}" if "images_per_s" in r
                 else f"{'-':>9} {'-':>9}")
        check = (f"{r['max_abs_dlogit']:11.4f} {r['top1_agreement']:6.3f}" if "max_abs_dlogit" in r
                 else "  " + (r.get("skipped") or r.get("error") or ""))
        print(f"{r['model']:<24} {r['batch']:>2} {r['precision']:<5} {r['engine']:<12} {r['config']:<11} {speed} {check}",
              file=out)
    peers = [e for e in engines if e != "onevit"]
    print("\nBest configuration per engine, images/s (onevit's speed-up over it; * below the target)", file=out)
    print(f"{'model':<24} {'b':>2} {'prec':<5} {'onevit':>9}" + "".join(f" {p:>26}" for p in peers), file=out)
    records = [r for r in records if r["kind"] == "cell"]
    keys = sorted({(r["model"], r["batch"], r["precision"]) for r in records},
                  key=lambda k: (k[0], k[1], PRECISIONS.index(k[2])))
    models_in_order = list(dict.fromkeys(r["model"] for r in records))
    keys.sort(key=lambda k: models_in_order.index(k[0]))
    for model, batch, precision in keys:
        ours = best(records, model, batch, precision, "onevit")
        row = f"{model:<24} {batch:>2} {precision:<5} " + (f"{ours['images_per_s']:9.2f}" if ours else f"{'-':>9}")
        for peer in peers:
            theirs = best(records, model, batch, precision, peer)
            if not theirs:
                row += f" {'-':>26}"
                continue
            cell = f"{theirs['images_per_s']:.2f} {theirs['config']}"
            if ours:
                ratio = ours["images_per_s"] / theirs["images_per_s"]
                cell += f" ({ratio:.2f}x{'*' if ratio < TARGETS[peer] else ''})"
            row += f" {cell:>26}"
        print(row, file=out)
    print("\nEfficiency onevit needs for each target (its own now; above 1.00: beyond the matmul peak)", file=out)
    print(f"{'model':<24} {'b':>2} {'prec':<5} {'onevit':>7}" + "".join(f" {p + ' ' + str(TARGETS[p]) + 'x':>18}" for p in peers),
          file=out)
    for model, batch, precision in keys:
        ours = best(records, model, batch, precision, "onevit")
        if not ours or "efficiency" not in ours:
            continue
        row = f"{model:<24} {batch:>2} {precision:<5} {ours['efficiency']:7.3f}"
        for peer in peers:
            theirs = best(records, model, batch, precision, peer)
            needed = needed_efficiency(ours, theirs, TARGETS[peer]) if theirs else None
            row += f" {needed:18.3f}" if needed is not None else f" {'-':>18}"
        print(row, file=out)
    onevit = [r for r in records if r["engine"] == "onevit" and "efficiency" in r and r["config"] == "latency"]
    if onevit:
        print("\nonevit efficiency (GFLOP/s ÷ the same command's matmul peak of that precision), hint latency", file=out)
        print(f"{'model':<24} {'b':>2}" + "".join(f" {p:>6}" for p in PRECISIONS), file=out)
        for model in models_in_order:
            for batch in sorted({r["batch"] for r in onevit}):
                cells = {r["precision"]: r["efficiency"] for r in onevit if (r["model"], r["batch"]) == (model, batch)}
                if cells:
                    print(f"{model:<24} {batch:>2}" + "".join(
                        f" {cells[p]:6.3f}" if p in cells else f" {'-':>6}" for p in PRECISIONS), file=out)


def add_common_arguments(ap: argparse.ArgumentParser) -> None:
    """Threads, where onevit and the photos are, the work directory, --out (compare.py, accuracy.py)."""
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--onevit", help="the onevit binary (default: BUILD/apps/onevit)")
    ap.add_argument("--build", default=os.path.join(peer_models.REPO, "build"), help="onevit's build directory")
    ap.add_argument("--photos", default=os.path.join(peer_models.SHARED, "data"), help="../shared/data")
    ap.add_argument("--work", default=os.environ.get("ONEVIT_PEERS_WORK", os.path.join(
        os.path.expanduser("~"), ".cache", "onevit", "peers-work")), help="models, exports, quantized models")
    ap.add_argument("--out", help="append the JSON lines to this file too")


def resolve_onevit(args) -> None:
    args.onevit = os.path.abspath(args.onevit or os.path.join(args.build, "apps", "onevit"))


def save_lines(records: list[dict], path: str) -> None:
    """Appended to path, one JSON object a line."""
    with open(path, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))


def emit_json_lines(records: list[dict], out: str | None) -> None:
    """To stdout, and appended to `out` when given."""
    print("\n".join(json.dumps(r) for r in records))
    if out:
        save_lines(records, out)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--model", action="append", default=[],
                    help="random:NAME[@SIZE] (vit_ti16, vit_s16, vit_b16, vit_l16) or a timm checkpoint")
    ap.add_argument("--arch", help="a checkpoint's timm architecture name")
    ap.add_argument("--image-size", type=int, help="a checkpoint's input size, if not its own")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="models: " + "; ".join(
        f"{k}: {' '.join(v)}" for k, v in PRESETS.items()))
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated, of " + ",".join(ENGINES))
    ap.add_argument("--batch", default="1,8", help="batch sizes (default 1,8)")
    ap.add_argument("--precision", default=",".join(PRECISIONS), help="comma-separated, of " + ",".join(PRECISIONS))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20, help="timed requests per cell and round, at most")
    ap.add_argument("--max-seconds", type=float, default=3.0, help="per cell and round (at least one request)")
    ap.add_argument("--calibration", type=int, default=300, help="int8 calibration images (augmented views)")
    ap.add_argument("--tables", metavar="FILE", help="only print the tables of JSON lines saved by --out")
    add_common_arguments(ap)
    args = ap.parse_args(argv)
    if args.tables:
        return args
    args.engines = [e for e in args.engines.split(",") if e]
    unknown = set(args.engines) - set(ENGINES)
    if unknown:
        ap.error(f"unknown engine(s) {', '.join(sorted(unknown))}: of {', '.join(ENGINES)}")
    args.engines.sort(key=ENGINES.index)
    args.precision = [p for p in args.precision.split(",") if p]
    if set(args.precision) - set(PRECISIONS):
        ap.error(f"--precision: of {', '.join(PRECISIONS)}, not {','.join(args.precision)}")
    try:
        args.batch = [int(b) for b in args.batch.split(",")]
    except ValueError:
        ap.error(f"--batch: comma-separated integers, not {args.batch!r}")
    if any(b < 1 for b in args.batch) or args.threads < 1 or args.rounds < 1 or args.iters < 1:
        ap.error("--batch, --threads, --rounds and --iters must be at least 1")
    resolve_onevit(args)
    if "onevit" in args.engines and not os.access(args.onevit, os.X_OK):
        ap.error(f"onevit binary not found: {args.onevit} (build it, or --onevit PATH)")
    models = args.model + PRESETS.get(args.preset, [])
    if not models:
        ap.error("name a model (--model) or a --preset")
    try:
        args.specs = [peer_models.parse_model(m, args.arch, args.image_size) for m in models]
    except peer_models.ModelError as e:
        ap.error(str(e))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.tables:
        try:
            with open(args.tables) as f:
                records = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as e:
            print(f"compare.py: {args.tables}: {e}", file=sys.stderr)
            return 1
        engines = [e for e in ENGINES if any(r.get("engine") == e for r in records)]
        print_tables([r for r in records if r.get("kind") == "cell"], engines, sys.stdout)
        return 0
    cpus = pin(args.threads)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    run = {"kind": "run", "date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name(),
           "cpus": cpus, "threads": args.threads, "rounds": args.rounds, "warmup": args.warmup,
           "iterations": args.iters, "max_seconds": args.max_seconds, "calibration": args.calibration,
           "precisions": args.precision, "load_average": os.getloadavg()[0], "python": sys.executable}
    log(f"{run['date']}  {run['cpu']}, CPUs {cpus}, {args.threads} threads, load {run['load_average']:.2f}")
    records = []
    if args.out:  # each model's lines as soon as it is done: a long run stopped halfway keeps them
        save_lines([run], args.out)
    for spec in args.specs:
        try:
            done = run_model(spec, args, log)
        except peer_models.ModelError as e:
            print(f"compare.py: {spec.label}: {e}", file=sys.stderr)
            return 1
        records += done
        if args.out:
            save_lines(done, args.out)
    run["load_average_end"] = os.getloadavg()[0]
    print_tables(records, args.engines, sys.stdout)
    print("\n".join(json.dumps(r) for r in [run] + records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
