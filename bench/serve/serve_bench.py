#!/usr/bin/python3
"""onevit serve against `onevit bench` on the same model, precision and threads (docs/serve.md).

    /usr/bin/python3 bench/serve/serve_bench.py [--models bench/models/vit_tiny_patch16_224.ovit ...]
        [--precisions f32,int8] [--max-batch 8] [--seconds 20] [--photos ../shared/data/imagenet-sample]

Per model and precision, load from another process on loopback (wrk, Debian's package;
bench/serve/post.lua):
- throughput: `onevit bench --hint throughput` (batch 1) gives the streams, threads and
  images/s; `onevit serve` runs with those streams and threads and --max-batch B, and wrk
  keeps streams x B binary-tensor requests of one image each in flight (images/s = requests/s);
  then the same with JPEG requests (the image input: ImageNet-sized photos, decoded and
  preprocessed by the server);
- latency: `onevit bench --batch 1` (the latency hint: one stream, every thread) gives the
  median; `onevit serve --hint latency` at concurrency 1 gives wrk's p50.
Prints a Markdown table and one JSON line per row. Take figures only on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "serve"))
from serve_harness import ServeProcess, binary_tensor_body, http_request, image_body, model_name_of  # noqa: E402


def bench(onevit: str, model: str, precision: str, *args: str) -> dict:
    out = subprocess.run([onevit, "bench", "--model", model, "--precision", precision, "--json", "--iters", "200",
                          "--max-seconds", "10", *args], check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def wrk(port: int, model: str, requests: list[tuple[str, int | None]], connections: int, seconds: int,
        tmp: str) -> dict:
    """wrk's requests/s, latency percentiles (ms) and failures for these request bodies."""
    listing = os.path.join(tmp, "requests.txt")
    with open(listing, "w") as f:
        for path, header in requests:
            f.write(f"{path} {header if header is not None else '-'}\n")
    env = dict(os.environ, ONEVIT_REQUESTS=listing, ONEVIT_PATH=f"/v2/models/{model}/infer")
    out = subprocess.run(["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{seconds}s",
                          "--latency", "--timeout", "30s", "-s", os.path.join(HERE, "post.lua"),
                          f"http://127.0.0.1:{port}"], check=True, stdout=subprocess.PIPE, text=True, env=env).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50%"), "p99_ms": ms("99%"),
            "failures": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, errors.groups())) if errors else 0),
            "output": out}


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onevit", default=os.path.join(REPO, "build", "apps", "onevit"))
    ap.add_argument("--models", nargs="+", default=[os.path.join(REPO, "bench", "models", f"vit_{size}_patch16_224.ovit")
                                                    for size in ("tiny", "base")])
    ap.add_argument("--precisions", default="f32,int8")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--photos", default=os.path.join(REPO, os.pardir, "shared", "data", "imagenet-sample"),
                    help="JPEGs for the image requests (ImageNet-sized); the first 32 are sent in turn")
    args = ap.parse_args()
    photos = sorted(os.path.join(args.photos, f) for f in os.listdir(args.photos)
                    if f.lower().endswith((".jpg", ".jpeg")))[:32]
    rows = []
    print("| model | precision | streams x threads | bench images/s | serve tensor images/s | ratio | "
          "serve JPEG images/s | JPEG / tensor | bench b1 ms | serve c1 p50 ms | difference ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="onevit_serve_bench_") as tmp:
        for model in args.models:
            name = model_name_of(model)
            for precision in args.precisions.split(","):
                throughput = bench(args.onevit, model, precision, "--hint", "throughput")
                latency = bench(args.onevit, model, precision, "--batch", "1")
                streams, threads = throughput["streams"], throughput["threads"]
                with ServeProcess(args.onevit, model, "--precision", precision, "--streams", str(streams),
                                  "--threads", str(threads), "--max-batch", str(args.max_batch)) as server:
                    metadata = http_request(server.http_port, "GET", f"/v2/models/{name}").json()
                    shape = tuple(metadata["inputs"][0]["shape"][1:])
                    tensor, images = write_bodies(tmp, shape, photos)
                    concurrency = streams * args.max_batch
                    wrk(server.http_port, name, tensor, concurrency, 3, tmp)  # warm the connections and caches
                    served = wrk(server.http_port, name, tensor, concurrency, args.seconds, tmp)
                    jpeg = wrk(server.http_port, name, images, concurrency, args.seconds, tmp)
                    server.stop()
                with ServeProcess(args.onevit, model, "--precision", precision, "--hint", "latency",
                                  "--threads", str(latency["threads"]), "--max-batch", "1") as server:
                    wrk(server.http_port, name, tensor, 1, 3, tmp)
                    single = wrk(server.http_port, name, tensor, 1, args.seconds, tmp)
                    server.stop()
                row = {"model": name, "precision": precision, "streams": streams, "threads": threads,
                       "bench_images_per_s": throughput["images_per_s"],
                       "serve_tensor_images_per_s": served["requests_per_s"],
                       "serve_jpeg_images_per_s": jpeg["requests_per_s"],
                       "bench_b1_latency_ms": latency["latency_ms_median"], "serve_c1_p50_ms": single["p50_ms"],
                       "serve_c1_p99_ms": single["p99_ms"],
                       "failures": served["failures"] + jpeg["failures"] + single["failures"]}
                rows.append(row)
                ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
                print(f"| {name} | {precision} | {streams} x {threads // streams} | {row['bench_images_per_s']:.1f} | "
                      f"{row['serve_tensor_images_per_s']:.1f} | "
                      f"{ratio(row['serve_tensor_images_per_s'], row['bench_images_per_s']):.2f} | "
                      f"{row['serve_jpeg_images_per_s']:.1f} | "
                      f"{ratio(row['serve_jpeg_images_per_s'], row['serve_tensor_images_per_s']):.2f} | "
                      f"{row['bench_b1_latency_ms']:.2f} | {row['serve_c1_p50_ms']:.2f} | "
                      f"{row['serve_c1_p50_ms'] - row['bench_b1_latency_ms']:+.2f} |", flush=True)
    for row in rows:
        print(json.dumps(row))
    return 1 if any(row["failures"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
