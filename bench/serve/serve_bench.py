#!/usr/bin/python3
"""onevit serve against `onevit bench` on the same model, precision and threads (docs/serve.md).

    /usr/bin/python3 bench/serve/serve_bench.py [--models bench/models/vit_tiny_patch16_224.ovit ...]
        [--precisions f32,int8] [--max-batch 8] [--cycles 15] [--min-seconds 10] [--max-window 60]
        [--photos ../shared/data/imagenet-sample] [--jsonl results.jsonl]

Per model and precision, interleaved so that drift shows (each bench runs before and after the server):
- `onevit bench --hint throughput` (batch 1): the streams S, threads and images/s;
- `onevit serve` with those streams and threads and --max-batch B, loaded from another process on
  loopback by wrk (Debian's package; bench/serve/post.lua) with 2 x S x B requests in flight, so that a
  stream that ends a batch finds the next one queued: binary-tensor requests of one image, then JPEG
  requests (the image input: ImageNet photos, decoded and preprocessed by the server). The rate is the
  server's `onevit_images_total` polled every 50 ms, between two of its steps that are whole rounds of
  the S streams (so that a window of few, long batches is not off by one batch), after a warm-up of
  two batches per stream; the window is --cycles batches per stream (at least --min-seconds, at most
  --max-window), sized from bench's rate, so a model of seconds per batch (ViT-B/16 f32) gets as
  many batches as a fast one. Between two loads the server drains what the last one left in flight;
- `onevit bench --batch 1` (the latency hint: one stream, every thread): the median latency;
  `onevit serve --hint latency --max-batch 1` at concurrency 1: wrk's p50, after a warm-up run.
Besides the rates, from the server's metrics and /proc: the mean batch, how busy the streams were
(model time / (S x window)), the CPU per image of the server and of wrk (on 2 cores both come out
of the model's share: their JPEG / tensor quotient is what the JPEG / tensor rate can reach when
the cores are the limit), the decoding per JPEG, and at
concurrency 1 the server's own time per request besides the model (received to answered, less
the model run). Prints a Markdown table and one JSON line per row (--jsonl: also to a file).
Take figures only on a quiet machine: the load average is printed with each row.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "serve"))
from serve_harness import ServeProcess, binary_tensor_body, http_request, image_body, metric_values, model_name_of  # noqa: E402

POLL_S = 0.05


def load_average() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def bench(onevit: str, model: str, precision: str, *args: str) -> dict:
    out = subprocess.run([onevit, "bench", "--model", model, "--precision", precision, "--json", "--iters", "200",
                          "--max-seconds", "10", *args], check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metrics(port: int) -> dict:
    return metric_values(http_request(port, "GET", "/metrics").body.decode())


def drain(port: int, timeout: float = 120) -> None:
    """Until the server has answered what a finished wrk left in flight."""
    deadline = time.monotonic() + timeout
    while metrics(port).get("onevit_inflight_requests", 0) > 0 and time.monotonic() < deadline:
        time.sleep(0.1)


def wrk(port: int, model: str, requests: list[tuple[str, int | None]], connections: int, seconds: float,
        tmp: str) -> dict:
    """wrk's requests/s, latency percentiles (ms) and failures for these request bodies."""
    listing = os.path.join(tmp, "requests.txt")
    with open(listing, "w") as f:
        for path, header in requests:
            f.write(f"{path} {header if header is not None else '-'}\n")
    env = dict(os.environ, ONEVIT_REQUESTS=listing, ONEVIT_PATH=f"/v2/models/{model}/infer")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                          "--latency", "--timeout", "60s", "-s", os.path.join(HERE, "post.lua"),
                          f"http://127.0.0.1:{port}"], check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests_done = re.search(r"(\d+) requests in", out)

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "cpu_ms_per_request": 1e3 * cpu / int(requests_done.group(1)) if requests_done and int(requests_done.group(1)) else float("nan"),
            "p50_ms": ms("50%"), "p99_ms": ms("99%"),
            "failures": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, errors.groups())) if errors else 0),
            "output": out}


def steady_window(samples: list[tuple[float, dict, float]], start: float, round_images: int) -> tuple[int, int]:
    """The samples (indices) just after the first step of images_total after `start` and after the
    last step a whole number of rounds (round_images: S x B images) later. Steps are batch ends:
    between two such, the streams ran whole rounds, so the rate and every figure per image are
    not off by a batch; polled every POLL_S, a step's time is known to half a poll."""
    steps = [i for i in range(1, len(samples))
             if samples[i][1]["images"] != samples[i - 1][1]["images"] and samples[i][0] >= start]
    if len(steps) < 2:
        return -1, -1
    images = lambda i: samples[i][1]["images"]  # noqa: E731
    first = steps[0]
    whole = [i for i in steps[1:] if (images(i) - images(first)) % round_images == 0]
    span = lambda i: samples[i][0] - samples[first][0]  # noqa: E731
    return first, whole[-1] if whole and span(whole[-1]) >= span(steps[-1]) / 2 else steps[-1]


def loaded(server: ServeProcess, name: str, requests: list, concurrency: int, warm_s: float, window_s: float,
           round_images: int, streams: int, tmp: str) -> dict:
    """wrk at `concurrency` for warm_s + window_s; the rate and the server's figures over the window."""
    port, pid = server.http_port, server.proc.pid
    keys = {"images": "onevit_images_total", "batches": "onevit_batch_size_count",
            "compute_s": "onevit_compute_duration_seconds_sum", "decode_s": "onevit_decode_duration_seconds_sum",
            "decoded": "onevit_decode_duration_seconds_count"}
    samples: list[tuple[float, dict, float]] = []  # seconds since wrk started, metrics, server CPU seconds
    done = threading.Event()
    t_start = time.monotonic()

    def poll() -> None:
        while not done.is_set():
            values = metrics(port)
            samples.append((time.monotonic() - t_start, {k: values.get(m, 0) for k, m in keys.items()},
                            cpu_seconds(pid)))
            time.sleep(POLL_S)

    poller = threading.Thread(target=poll)
    poller.start()
    result = wrk(port, name, requests, concurrency, warm_s + window_s, tmp)
    done.set()
    poller.join()
    drain(port)
    first, last = steady_window(samples, warm_s, round_images)
    if first < 0:
        return {"images_per_s": float("nan"), "window_s": 0.0, "wrk_requests_per_s": result["requests_per_s"],
                "failures": result["failures"], "mean_batch": float("nan"), "streams_busy": float("nan"),
                "server_cpu_ms_per_image": float("nan"), "client_cpu_ms_per_image": result["cpu_ms_per_request"],
                "decode_ms_per_request": float("nan")}
    (t0, m0, cpu0), (t1, m1, cpu1) = samples[first], samples[last]
    d = {k: m1[k] - m0[k] for k in keys}
    return {"images_per_s": d["images"] / (t1 - t0), "window_s": t1 - t0,
            "wrk_requests_per_s": result["requests_per_s"], "failures": result["failures"],
            "mean_batch": d["images"] / d["batches"] if d["batches"] else float("nan"),
            "streams_busy": d["compute_s"] / (streams * (t1 - t0)),
            "server_cpu_ms_per_image": 1e3 * (cpu1 - cpu0) / d["images"],
            "client_cpu_ms_per_image": result["cpu_ms_per_request"],
            "decode_ms_per_request": 1e3 * d["decode_s"] / d["decoded"] if d["decoded"] else 0.0}


def single(server: ServeProcess, name: str, requests: list, seconds: float, tmp: str) -> dict:
    """Concurrency 1: wrk's percentiles after a warm-up run; the server's time besides the model."""
    port = server.http_port
    wrk(port, name, requests, 1, 2, tmp)
    drain(port)
    before = metrics(port)
    result = wrk(port, name, requests, 1, seconds, tmp)
    drain(port)
    after = metrics(port)

    def mean_ms(key: str, labels: str = "") -> float:
        count = after[f"{key}_count{labels}"] - before[f"{key}_count{labels}"]
        return 1e3 * (after[f"{key}_sum{labels}"] - before[f"{key}_sum{labels}"]) / count if count else float("nan")

    request_ms = mean_ms("onevit_request_duration_seconds", '{protocol="http"}')
    compute_ms = mean_ms("onevit_compute_duration_seconds")
    count = after["onevit_compute_duration_seconds_count"] - before["onevit_compute_duration_seconds_count"]
    return {"p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"], "failures": result["failures"],
            "server_request_ms": request_ms, "compute_ms": compute_ms, "requests": int(count)}


def write_bodies(tmp: str, shape: tuple, photos: list[str]) -> tuple[list, list]:
    x = np.random.default_rng(0).standard_normal((1,) + shape).astype(np.float32)
    tensor_body, tensor_header = binary_tensor_body(x)
    tensor_path = os.path.join(tmp, "tensor.bin")
    open(tensor_path, "wb").write(tensor_body)
    images = []
    for i, photo in enumerate(photos):
        body, header = image_body([open(photo, "rb").read()])
        path = os.path.join(tmp, f"image_{i}.bin")
        open(path, "wb").write(body)
        images.append((path, header))
    return [(tensor_path, tensor_header)], images


def cpu_bound_quotient(tensor: dict, jpeg: dict) -> float:
    """JPEG / tensor images/s when the cores are the limit: the quotient of their CPU per image."""
    return (tensor["server_cpu_ms_per_image"] + tensor["client_cpu_ms_per_image"]) / (
        jpeg["server_cpu_ms_per_image"] + jpeg["client_cpu_ms_per_image"])


def cell(args, model: str, precision: str, photos: list[str], tmp: str) -> dict:
    name = model_name_of(model)
    load_before = load_average()
    throughput = [bench(args.onevit, model, precision, "--hint", "throughput")]
    streams, threads = throughput[0]["streams"], throughput[0]["threads"]
    bench_rate = throughput[0]["images_per_s"]
    batch_s = args.max_batch * streams / bench_rate  # one stream's batch of max_batch images
    warm_s = max(3.0, 2 * batch_s)
    window_s = min(args.max_window, max(args.min_seconds, args.cycles * batch_s))
    concurrency = 2 * streams * args.max_batch
    with ServeProcess(args.onevit, model, "--precision", precision, "--streams", str(streams), "--threads",
                      str(threads), "--max-batch", str(args.max_batch)) as server:
        metadata = http_request(server.http_port, "GET", f"/v2/models/{name}").json()
        tensor, images = write_bodies(tmp, tuple(metadata["inputs"][0]["shape"][1:]), photos)
        round_images = streams * args.max_batch
        served = loaded(server, name, tensor, concurrency, warm_s, window_s, round_images, streams, tmp)
        jpeg = loaded(server, name, images, concurrency, warm_s, window_s, round_images, streams, tmp)
        server.stop()
    throughput.append(bench(args.onevit, model, precision, "--hint", "throughput"))

    latency = [bench(args.onevit, model, precision, "--batch", "1")]
    latency_threads = latency[0]["threads"]
    c1_seconds = max(args.min_seconds, 60 * latency[0]["latency_ms_median"] / 1e3)
    with ServeProcess(args.onevit, model, "--precision", precision, "--hint", "latency", "--threads",
                      str(latency_threads), "--max-batch", "1") as server:
        one = single(server, name, tensor, c1_seconds, tmp)
        server.stop()
    latency.append(bench(args.onevit, model, precision, "--batch", "1"))

    bench_ips = [b["images_per_s"] for b in throughput]
    bench_ms = [b["latency_ms_median"] for b in latency]
    return {"model": name, "precision": precision, "streams": streams, "threads": threads,
            "max_batch": args.max_batch, "concurrency": concurrency,
            "bench_images_per_s": float(np.mean(bench_ips)), "bench_images_per_s_runs": bench_ips,
            "serve_tensor_images_per_s": served["images_per_s"], "tensor": served,
            "serve_jpeg_images_per_s": jpeg["images_per_s"], "jpeg": jpeg,
            "bench_b1_latency_ms": float(np.mean(bench_ms)), "bench_b1_latency_ms_runs": bench_ms,
            "latency_threads": latency_threads,
            "serve_c1_p50_ms": one["p50_ms"], "serve_c1_p99_ms": one["p99_ms"], "c1": one,
            "failures": served["failures"] + jpeg["failures"] + one["failures"],
            "load_average": [load_before, load_average()]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onevit", default=os.path.join(REPO, "build", "apps", "onevit"))
    ap.add_argument("--models", nargs="+", default=[os.path.join(REPO, "bench", "models", f"vit_{size}_patch16_224.ovit")
                                                    for size in ("tiny", "base")])
    ap.add_argument("--precisions", default="f32,int8")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--cycles", type=float, default=15, help="batches per stream in a measured window")
    ap.add_argument("--min-seconds", type=float, default=10, help="the shortest measured window")
    ap.add_argument("--max-window", type=float, default=60, help="the longest measured window, seconds")
    ap.add_argument("--photos", default=os.path.join(REPO, os.pardir, "shared", "data", "imagenet-sample"),
                    help="JPEGs for the image requests (ImageNet-sized); the first 32 are sent in turn")
    ap.add_argument("--jsonl", help="also write the JSON lines to this file")
    args = ap.parse_args()
    photos = sorted(os.path.join(args.photos, f) for f in os.listdir(args.photos)
                    if f.lower().endswith((".jpg", ".jpeg")))[:32]
    started = time.monotonic()
    rows = []
    print("| model | precision | S x T | bench images/s | serve tensor images/s | ratio | busy | batch | "
          "serve JPEG images/s | JPEG / tensor | CPU-bound JPEG / tensor | decode ms | bench b1 ms | serve c1 p50 ms | difference ms | "
          "server besides model ms | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="onevit_serve_bench_") as tmp:
        for model in args.models:
            for precision in args.precisions.split(","):
                row = cell(args, model, precision, photos, tmp)
                rows.append(row)
                t, j, one = row["tensor"], row["jpeg"], row["c1"]
                print(f"| {row['model']} | {precision} | {row['streams']} x {row['threads'] // row['streams']} | "
                      f"{row['bench_images_per_s']:.1f} ({' / '.join(f'{v:.1f}' for v in row['bench_images_per_s_runs'])}) | "
                      f"{t['images_per_s']:.1f} | {t['images_per_s'] / row['bench_images_per_s']:.2f} | "
                      f"{100 * t['streams_busy']:.0f} % | {t['mean_batch']:.1f} | {j['images_per_s']:.1f} | "
                      f"{j['images_per_s'] / t['images_per_s']:.2f} | {cpu_bound_quotient(t, j):.2f} | "
                      f"{j['decode_ms_per_request']:.2f} | "
                      f"{row['bench_b1_latency_ms']:.2f} ({' / '.join(f'{v:.2f}' for v in row['bench_b1_latency_ms_runs'])}) | "
                      f"{one['p50_ms']:.2f} | {one['p50_ms'] - row['bench_b1_latency_ms']:+.2f} | "
                      f"{one['server_request_ms'] - one['compute_ms']:.2f} | "
                      f"{row['load_average'][0]:.1f}-{row['load_average'][1]:.1f} |", flush=True)
    for row in rows:
        print(json.dumps(row))
    if args.jsonl:
        with open(args.jsonl, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    print(f"{time.monotonic() - started:.0f} s in all")
    return 1 if any(row["failures"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
