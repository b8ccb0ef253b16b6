#!/usr/bin/python3
"""onevit vs. PyTorch (float32, CPU) on the same ViT weights, same threads, same run.

    /usr/bin/python3 bench/compare_pytorch.py --onevit build/apps/onevit \\
        [--arch vit_base_patch16_224 | --model FILE.ovit] [--batch 1,8] [--threads 2] [--json]

The model: `--arch vit_{tiny,small,base,large}_patch16_224` uses bench/models' random-
weight file, written first by bench/make_random_models.py if missing; `--model`
takes any .ovit file. PyTorch runs tests/reference/vit_reference.py's ViT loaded from
that same file (float32, torch.inference_mode(), torch.set_num_threads(T)); onevit
runs as `onevit bench --json`. Each (batch, threads) is timed in --rounds rounds of
PyTorch then onevit, interleaved, because this machine's clock drifts: a slow spell
then hits both. Within a round each side does --warmup untimed runs, then up to
--iters timed runs (stopping after --max-seconds, with one run at least: the rule of
`onevit bench`); a round gives the median, and the table shows the median of the
rounds' medians.

PyTorch on Debian does its matrix products in OpenBLAS, whose runtime CPU detection
may pick AVX2 kernels on an AVX-512 machine. Unless OPENBLAS_CORETYPE is already
set, it is set to SkylakeX (when /proc/cpuinfo shows avx512f) before torch is
imported, so the comparison is against PyTorch's best case here. Set
OPENBLAS_CORETYPE yourself (e.g. Haswell) to compare against another choice.

Columns: speed-up = PyTorch median / onevit median; GFLOP/s = the forward pass's
matrix-product FLOPs (as bench/flops.hpp counts them) per second of onevit's median.
"""

from __future__ import annotations

import os
import sys


def _prefer_avx512_openblas() -> None:
    # Must happen before torch (hence OpenBLAS) is loaded: OpenBLAS reads it once.
    if "OPENBLAS_CORETYPE" in os.environ:
        return
    try:
        with open("/proc/cpuinfo") as f:
            avx512 = " avx512f" in f.read()
    except OSError:
        avx512 = False
    if avx512:
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"


_prefer_avx512_openblas()

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

import make_random_models as models  # noqa: E402  (also puts tests/reference on the path)
from harness import ToolError, resolve_onevit, run_tool  # noqa: E402
import vit_reference  # noqa: E402


def forward_flops_per_image(cfg: vit_reference.ViTConfig) -> float:
    """Matrix-product FLOPs of one image's forward pass: the count of bench/flops.hpp."""
    n = cfg.prefix_tokens + cfg.grid[0] * cfg.grid[1]
    d, inner, m = cfg.embed_dim, cfg.inner_dim, cfg.mlp_dim
    patch_embed = (n - cfg.prefix_tokens) * d * cfg.in_chans * cfg.patch_size ** 2
    block = n * d * 3 * inner + 2 * n * n * inner + n * inner * d + 2 * n * d * m
    head = (2 if cfg.distilled else 1) * d * cfg.num_classes
    return 2.0 * (patch_embed + cfg.depth * block + head)


def time_pytorch(model, x: torch.Tensor, warmup: int, iters: int, max_seconds: float) -> float:
    """Median milliseconds of model(x), timed like `onevit bench`."""
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        times = []
        started = time.perf_counter()
        while len(times) < iters and (not times or time.perf_counter() - started < max_seconds):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def time_onevit(onevit: str, path: str, batch: int, threads: int, args) -> dict:
    out = run_tool([onevit, "bench", "--model", path, "--batch", str(batch), "--threads", str(threads),
                    "--iters", str(args.iters), "--warmup", str(args.warmup),
                    "--max-seconds", str(args.max_seconds), "--json"], "onevit bench")
    return json.loads(out)


def int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers, comma-separated")
    return values


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--arch", default="vit_base_patch16_224",
                     help="vit_{tiny,small,base,large}_patch16_224: a random-weight model in "
                          "--models-dir (default vit_base_patch16_224)")
    src.add_argument("--model", help="an .ovit file instead of --arch")
    ap.add_argument("--models-dir", default=models.DEFAULT_OUT, help="where --arch files live")
    ap.add_argument("--onevit", help="the onevit binary (default: $ONEVIT_BIN, else build/apps/onevit)")
    ap.add_argument("--batch", type=int_list, default=[1, 8], help="batch sizes (default 1,8)")
    ap.add_argument("--threads", type=int_list, default=[len(os.sched_getaffinity(0))],
                    help="thread counts (default: the cores this process may use)")
    ap.add_argument("--rounds", type=int, default=2, help="PyTorch/onevit rounds per case (default 2)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs per round (default 2)")
    ap.add_argument("--iters", type=int, default=10, help="timed runs per round at most (default 10)")
    ap.add_argument("--max-seconds", type=float, default=5.0,
                    help="stop timing a round after this long (default 5)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args(argv)

    onevit = resolve_onevit(args.onevit, models.REPO)
    cores = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()[0]
    if load_before > cores and not args.json:
        # OpenMP barriers (PyTorch, and OpenBLAS under it) wait a scheduler time slice
        # whenever one of their threads is descheduled; onevit's TBB tasks do not.
        print(f"note: load average {load_before:.1f} on {cores} cores: multi-threaded PyTorch "
              f"suffers far more than onevit from the competition; expect inflated ratios",
              file=sys.stderr)
    try:
        if args.model:
            path = args.model
        else:
            size = args.arch.removeprefix("vit_").removesuffix("_patch16_224")
            if models.arch_name(size) != args.arch or size not in models.SIZES:
                ap.error(f"--arch {args.arch}: expected one of "
                         + ", ".join(models.arch_name(s) for s in models.SIZES))
            path = models.ensure_model(size, args.models_dir)
        model, _ = vit_reference.from_ovit(path, dtype=torch.float32)
        cfg = model.cfg
        flops = forward_flops_per_image(cfg)
        name = os.path.splitext(os.path.basename(path))[0]

        rows = []
        for threads in args.threads:
            torch.set_num_threads(threads)
            for batch in args.batch:
                x = torch.randn((batch, cfg.in_chans, *cfg.image_size),
                                generator=torch.Generator().manual_seed(batch))
                pytorch_ms, onevit_ms = [], []
                for _ in range(args.rounds):
                    pytorch_ms.append(time_pytorch(model, x, args.warmup, args.iters, args.max_seconds))
                    onevit_ms.append(time_onevit(onevit, path, batch, threads, args)["latency_ms_median"])
                p, o = statistics.median(pytorch_ms), statistics.median(onevit_ms)
                rows.append({"model": name, "batch": batch, "threads": threads,
                             "pytorch_ms_median": p, "onevit_ms_median": o, "speedup": p / o,
                             "onevit_images_per_s": batch / (o / 1e3),
                             "onevit_gflop_per_s": flops * batch / (o / 1e3) / 1e9,
                             "pytorch_ms_rounds": pytorch_ms, "onevit_ms_rounds": onevit_ms})
                if not args.json:
                    if len(rows) == 1:
                        print(f"{'model':<24}{'batch':>6}{'threads':>8}{'PyTorch ms':>12}{'onevit ms':>11}"
                              f"{'speed-up':>10}{'onevit img/s':>14}{'onevit GFLOP/s':>16}")
                    r = rows[-1]
                    print(f"{name:<24}{batch:>6}{threads:>8}{p:>12.2f}{o:>11.2f}{r['speedup']:>9.2f}x"
                          f"{r['onevit_images_per_s']:>14.1f}{r['onevit_gflop_per_s']:>16.1f}", flush=True)
    except ToolError as e:
        print(f"compare_pytorch.py: {e}", file=sys.stderr)
        return 1

    environment = {"OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "torch": torch.__version__,
                   "onevit": onevit, "model_path": os.path.abspath(path), "gflop_per_image": flops / 1e9,
                   "rounds": args.rounds, "warmup": args.warmup, "iters": args.iters,
                   "cores": cores, "load_average_before": load_before,
                   "load_average_after": os.getloadavg()[0]}
    if args.json:
        print(json.dumps({"environment": environment, "results": rows}, indent=1))
    else:
        print(f"OPENBLAS_CORETYPE={environment['OPENBLAS_CORETYPE']}, torch {torch.__version__}, "
              f"{flops / 1e9:.2f} GFLOP per image; medians of {args.rounds} interleaved rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
