#!/usr/bin/python3
"""Concurrency-1 latency of onevit serve against `onevit bench --batch 1`, in short alternations
(docs/serve.md): the model's own time drifts by several per cent over minutes on this machine, so
one bench before and one after a server cannot judge a difference of 1 ms.

    /usr/bin/python3 bench/serve/c1_alternate.py --model bench/models/vit_tiny_patch16_224.ovit \\
        [--precision int8] [--rounds 8] [--seconds 4] [--jsonl results.jsonl] [--onevit BUILD...]

One `onevit serve --hint latency --threads T --max-batch 1` stays up (T: the threads bench chooses
for batch 1); each round runs `onevit bench --batch 1` for --seconds and wrk at concurrency 1 for
--seconds, in alternating order (bench first in even rounds), so drift falls on both alike. Per
round: bench's median, wrk's p50, and from the server's metrics its model time and its time per
request (received to answered). Prints the rounds, then the medians over rounds and the
difference serve p50 - bench median, and the mean of the rounds' own differences with its
standard error (their spread over sqrt(rounds): a difference within about twice it is not
resolved); exits 1 on a failed request. Where the model's own time drifts by more than the
1 ms judged (ViT-B), the difference is also split in two: what the server and the client add
(wrk's p50 - the server's mean model time, over the same requests, so drift cancels) and the
model inside the server against bench (model - bench median).

With several --onevit builds (an A/B), each has a server of its own, up throughout (idle while
another runs), and each round runs every build's bench and wrk in turn, the builds' order
reversed every other round; a summary per build.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile

from serve_bench import REPO, drain, load_average, single, write_bodies, wrk

sys.path.insert(0, os.path.join(REPO, "tests", "serve"))
from serve_harness import ServeProcess, http_request, model_name_of  # noqa: E402


def bench_median(onevit: str, model: str, precision: str, seconds: float) -> dict:
    out = subprocess.run([onevit, "bench", "--model", model, "--precision", precision, "--batch", "1", "--json",
                          "--iters", "100000", "--max-seconds", str(seconds)],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onevit", nargs="+", default=[os.path.join(REPO, "build", "apps", "onevit")],
                    help="one build, or several to compare (each with a server of its own, in turn)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4, help="of bench, and of wrk, per round")
    ap.add_argument("--jsonl", help="append the summary as one JSON line (one per build)")
    args = ap.parse_args()

    name = model_name_of(args.model)
    threads = bench_median(args.onevit[0], args.model, args.precision, args.seconds)["threads"]
    load_before = load_average()
    rounds: dict[str, list[dict]] = {onevit: [] for onevit in args.onevit}
    statuses = {}
    with tempfile.TemporaryDirectory(prefix="onevit_c1_") as tmp, contextlib.ExitStack() as stack:
        servers = {onevit: stack.enter_context(
            ServeProcess(onevit, args.model, "--precision", args.precision, "--hint", "latency", "--threads",
                         str(threads), "--max-batch", "1")) for onevit in args.onevit}
        first = servers[args.onevit[0]]
        shape = tuple(http_request(first.http_port, "GET", f"/v2/models/{name}").json()["inputs"][0]["shape"][1:])
        tensor, _ = write_bodies(tmp, shape, [])
        for server in servers.values():
            wrk(server.http_port, name, tensor, 1, 2, tmp)  # warm-up
            drain(server.http_port)
        for r in range(args.rounds):
            # Builds in turn, reversed every other round; bench first in even rounds.
            for onevit in (args.onevit if r % 2 == 0 else args.onevit[::-1]):
                one: dict = {}
                for step in (("bench", "serve") if r % 2 == 0 else ("serve", "bench")):
                    if step == "bench":
                        one["bench_ms"] = bench_median(onevit, args.model, args.precision,
                                                       args.seconds)["latency_ms_median"]
                    else:
                        one.update(single(servers[onevit], name, tensor, args.seconds, tmp))
                one["load"] = load_average()
                rounds[onevit].append(one)
                label = f" {onevit}" if len(args.onevit) > 1 else ""
                print(f"round {r + 1}{label}: bench {one['bench_ms']:.2f} ms, serve p50 {one['p50_ms']:.2f} ms "
                      f"({one['p50_ms'] - one['bench_ms']:+.2f}), serve model {one['compute_ms']:.2f} ms, "
                      f"serve request {one['server_request_ms']:.2f} ms, load {one['load']:.2f}", flush=True)
        for onevit, server in servers.items():
            statuses[onevit] = server.stop()

    ok = True
    for onevit in args.onevit:
        mine = rounds[onevit]
        med = lambda key: statistics.median(r[key] for r in mine)  # noqa: E731
        differences = [r["p50_ms"] - r["bench_ms"] for r in mine]
        summary = {"model": name, "precision": args.precision, "threads": threads, "rounds": len(mine),
                   "seconds": args.seconds, "bench_ms": med("bench_ms"), "serve_p50_ms": med("p50_ms"),
                   "difference_ms": med("p50_ms") - med("bench_ms"),
                   "round_differences_ms": differences,
                   # A round's bench and serve are adjacent in time: the mean of the rounds' differences
                   # does not depend on how often each side caught the machine's slow spells.
                   "difference_mean_ms": statistics.mean(differences),
                   "difference_standard_error_ms": (statistics.stdev(differences) / len(differences) ** 0.5
                                                    if len(differences) > 1 else float("nan")),
                   "added_ms": statistics.median(r["p50_ms"] - r["compute_ms"] for r in mine),
                   "model_minus_bench_ms": statistics.median(r["compute_ms"] - r["bench_ms"] for r in mine),
                   "serve_model_ms": med("compute_ms"), "serve_request_ms": med("server_request_ms"),
                   "failures": sum(r["failures"] for r in mine), "load_average": [load_before, load_average()],
                   "server_exit": statuses[onevit], "round_figures": mine}
        if len(args.onevit) > 1:
            summary["onevit"] = onevit
        label = f" [{onevit}]" if len(args.onevit) > 1 else ""
        print(f"{name} {args.precision}, {threads} threads, {len(mine)} rounds of {args.seconds:g} s{label}: "
              f"bench {summary['bench_ms']:.2f} ms, serve c1 p50 {summary['serve_p50_ms']:.2f} ms, "
              f"difference {summary['difference_ms']:+.2f} ms; the rounds' differences: mean "
              f"{summary['difference_mean_ms']:+.2f} ms, standard error {summary['difference_standard_error_ms']:.2f} ("
              f"{', '.join(f'{d:+.2f}' for d in summary['round_differences_ms'])}); p50 - the server's model time "
              f"{summary['added_ms']:+.2f} ms, its model - bench {summary['model_minus_bench_ms']:+.2f} ms; serve's model time "
              f"{summary['serve_model_ms']:.2f} ms, its request time {summary['serve_request_ms']:.2f} ms; "
              f"{summary['failures']} failed; load {load_before:.2f} -> {summary['load_average'][1]:.2f}")
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(summary) + "\n")
        ok = ok and summary["failures"] == 0 and statuses[onevit] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
