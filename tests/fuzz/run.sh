#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and fuzzes each for SECONDS.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]     (targets: model_file image serve_request; default all)
#
# Environment: ONEVIT_FUZZ_BUILD (build dir, default build-fuzz), CXX (default
# clang++-14), ONEVIT_FUZZ_JOBS (build parallelism).
# The corpus that grows across runs is BUILD/fuzz/corpus/TARGET; seeds are made
# fresh each run in BUILD/fuzz/seeds/TARGET from the bundled model, sample
# images, test fixtures and fuzz_seeds' synthetic files. A crash, a sanitizer
# report, a leak, a timeout (10 s per input) or an exception other than
# onevit::Error fails the run; the input is saved as BUILD/fuzz/artifacts/TARGET-*
# (reproduce: BUILD/tests/fuzz/fuzz_TARGET FILE).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS [model_file|image|serve_request ...]" >&2
  exit 2
fi
seconds=$1
shift
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(model_file image serve_request)

build=${ONEVIT_FUZZ_BUILD:-build-fuzz}
cxx=${CXX:-clang++-14}
jobs=${ONEVIT_FUZZ_JOBS:-$(nproc)}

if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DONEVIT_FUZZ=ON \
    -DONEVIT_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build" -j "$jobs" --target fuzz_model_file fuzz_image fuzz_serve_request fuzz_seeds

work=$build/fuzz
mkdir -p "$work/artifacts"

make_seeds() {  # TARGET DIR
  rm -rf "$2"
  mkdir -p "$2"
  case $1 in
    model_file)
      cp weights/digits_vit.ovit "$2/"
      "$build/tests/fuzz/fuzz_seeds" models "$2" >/dev/null
      ;;
    image)
      cp weights/samples/*.png "$2/"
      cp tests/data/images/*.jpg tests/data/images/*.webp tests/data/images/*.bmp tests/data/images/*.tif \
        tests/data/images/src_rgb.png "$2/"
      "$build/tests/fuzz/fuzz_seeds" images "$2" >/dev/null
      ;;
    serve_request)
      cp tests/fuzz/serve_request_seeds/* "$2/"
      ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
summary=()
for target in "${targets[@]}"; do
  binary=$build/tests/fuzz/fuzz_$target
  if [[ ! -x $binary ]]; then
    echo "unknown target: $target" >&2
    exit 2
  fi
  seeds=$work/seeds/$target
  corpus=$work/corpus/$target
  make_seeds "$target" "$seeds"
  mkdir -p "$corpus"
  dict=()
  [[ -f tests/fuzz/$target.dict ]] && dict=(-dict="tests/fuzz/$target.dict")
  log=$work/$target.log
  echo "== fuzz_$target for ${seconds}s (log: $log)"
  set +e
  "$binary" "$corpus" "$seeds" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=4096 -malloc_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$target-" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus_size=$(find "$corpus" -type f | wc -l)
  line="fuzz_$target: ${seconds}s, ${execs:-?} executions, corpus $corpus_size files, exit status $rc"
  echo "$line"
  summary+=("$line")
  if [[ $rc -ne 0 ]]; then
    status=1
    grep -E "ERROR|SUMMARY|runtime error|deadly signal|Test unit written|fuzz_$target:" "$log" | head -20 || true
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
