#!/bin/sh
# Issue 23's load table in one command, for a quiet machine (about 8 minutes on 2 cores):
# serve_bench.py on ViT-Ti/16 and ViT-B/16 (random weights), f32 and int8: tensor and JPEG
# throughput against `onevit bench --hint throughput`, concurrency-1 latency against
# `onevit bench --batch 1`, each bench run before and after its server (docs/serve.md).
#
#   bench/serve/quiet_table.sh [OUT.jsonl]     (default bench/results/serve-vs-bench-DATE-HHMM.jsonl)
#
# Needs build/apps/onevit (a Release build of this checkout), wrk, and ../shared/data/imagenet-sample.
set -eu
cd "$(dirname "$0")/../.."
[ -x build/apps/onevit ] || { echo "$0: build/apps/onevit is missing: build this checkout first" >&2; exit 1; }
/usr/bin/python3 bench/make_random_models.py --models tiny,base
out=${1:-bench/results/serve-vs-bench-$(date +%F-%H%M).jsonl}
echo "load before: $(cat /proc/loadavg)"
status=0
/usr/bin/python3 bench/serve/serve_bench.py --precisions f32,int8 --max-batch 8 --jsonl "$out" || status=$?
echo "load after: $(cat /proc/loadavg)"
echo "rows: $out"
exit $status
