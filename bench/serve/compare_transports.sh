#!/usr/bin/env bash
# The measurement behind onevit serve's HTTP library (docs/serve.md): the same trivial
# endpoint (a 602,112-byte body in, the size of one 3x224x224 float tensor; 4,000 bytes
# out, 1,000 logits) on cpp-httplib 0.11 and on Boost.Beast, each loaded by wrk with
# CONNECTIONS requests in flight for SECONDS; prints wrk's rate and latency and the
# server's CPU time per request.
#
#   bench/serve/compare_transports.sh [SECONDS=10] [CONNECTIONS=16]
#
# Needs Debian's libcpp-httplib-dev and wrk; builds build/bench/serve_transports.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
connections=${2:-16}
cmake --build build --target serve_transports >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 602112 /dev/urandom >"$work/body.bin"
echo "$work/body.bin -" >"$work/requests.txt"
port=18091
for transport in httplib beast; do
  build/bench/serve_transports "$transport" "$port" >"$work/$transport.txt" &
  server=$!
  sleep 0.5
  echo "== $transport, $connections connections, ${seconds}s"
  ONEVIT_REQUESTS="$work/requests.txt" ONEVIT_PATH=/echo \
    wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/serve/post.lua "http://127.0.0.1:$port" |
    grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors"
  kill -INT "$server"
  wait "$server"
  cat "$work/$transport.txt"
  port=$((port + 1))
done
