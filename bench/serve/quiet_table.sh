#!/bin/sh
# Issue 23's load table in one command, for a quiet machine (about 8 minutes on 2 cores):
# serve_bench.py on ViT-Ti/16 and ViT-B/16 (random weights), f32 and int8: tensor and JPEG
# throughput against `onevit bench --hint throughput`, concurrency-1 latency against
# `onevit bench --batch 1`, each bench run before and after its server (docs/serve.md).
# With --c1: only the concurrency-1 target, in short alternations of bench and server
# (c1_alternate.py, 6 rounds of 4 s per cell; also about 8 minutes).
#
#   bench/serve/quiet_table.sh [--c1] [OUT.jsonl]
#       (default bench/results/serve-vs-bench-DATE-HHMM.jsonl, with --c1 serve-c1-alternating-DATE-HHMM.jsonl)
#
# Needs build/apps/onevit (a Release build of this checkout), wrk, and ../shared/data/imagenet-sample.
set -eu
cd "$(dirname "$0")/../.."
c1=false
if [ "${1:-}" = --c1 ]; then c1=true; shift; fi
[ -x build/apps/onevit ] || { echo "$0: build/apps/onevit is missing: build this checkout first" >&2; exit 1; }
/usr/bin/python3 bench/make_random_models.py --models tiny,base
name=$($c1 && echo serve-c1-alternating || echo serve-vs-bench)
out=${1:-bench/results/$name-$(date +%F-%H%M).jsonl}
echo "load before: $(cat /proc/loadavg)"
status=0
if $c1; then
  for model in tiny base; do
    for precision in f32 int8; do
      /usr/bin/python3 bench/serve/c1_alternate.py --model "bench/models/vit_${model}_patch16_224.ovit" \
        --precision "$precision" --rounds 6 --seconds 4 --jsonl "$out" || status=$?
    done
  done
else
  /usr/bin/python3 bench/serve/serve_bench.py --precisions f32,int8 --max-batch 8 --jsonl "$out" || status=$?
fi
echo "load after: $(cat /proc/loadavg)"
echo "rows: $out"
exit $status
