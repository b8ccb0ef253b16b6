#!/bin/bash
# Packs the onevit program for a machine with no package manager (the 16-core
# device of issue 10): the binary, every library `ldd` lists and Debian's
# loader, plus random-weight models whose tensors repeat 16 KB each (so the
# whole bundle compresses to a few MB; the device tool carries at most 64 MiB).
#
#   bench/bundle.sh [BUILD_DIR] [OUT_DIR]        default: build, bench/bundle
#
# On the other machine, from OUT_DIR:
#   ./run_table.sh                               the issue's table, one JSON line per row
#   lib/ld-linux-x86-64.so.2 --library-path lib ./onevit bench --model models/vit_base_patch16_224.ovit
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
OUT=${2:-$HERE/bundle}
BINARY=$BUILD/apps/onevit
[ -x "$BINARY" ] || { echo "bundle.sh: no $BINARY (build the onevit_cli target first)" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT/lib"
cp "$BINARY" "$OUT/onevit"
# Every shared library the binary loads, resolved here; the loader under a fixed name.
ldd "$BINARY" | awk '/=> \// {print $3} /^\t\/.*ld-linux/ {print $1}' | while read -r lib; do
    cp -L "$lib" "$OUT/lib/"
done
cp -L "$(ldd "$BINARY" | awk '/ld-linux/ {print $1}')" "$OUT/lib/ld-linux-x86-64.so.2"

# Models: written once (tiled, compressible) into bench/models-tiled, packed gzipped.
MODELS=$HERE/models-tiled
/usr/bin/python3 "$HERE/make_random_models.py" --tiled --out "$MODELS" --models tiny,base
tar -C "$MODELS" -czf "$OUT/models.tar.gz" vit_tiny_patch16_224.ovit vit_base_patch16_224.ovit

cat > "$OUT/run_table.sh" <<'RUN'
#!/bin/bash
# Issue 10's table on this machine: one `onevit bench --json` line per row.
set -euo pipefail
cd "$(dirname "$0")"
[ -d models ] || { mkdir models && tar -C models -xzf models.tar.gz; }
onevit() { lib/ld-linux-x86-64.so.2 --library-path lib ./onevit "$@"; }
B=models/vit_base_patch16_224.ovit
T=models/vit_tiny_patch16_224.ovit
for t in 1 2 4 8 16; do onevit bench --model $B --batch 1 --threads $t --json; done
onevit bench --model $B --batch 8 --threads 16 --json
onevit bench --model $B --batch 8 --threads 16 --hint throughput --json
onevit bench --model $B --batch 1 --threads 16 --hint throughput --json
for t in 1 2 4 8 16; do onevit bench --model $T --batch 1 --threads $t --json; done
onevit bench --model $T --batch 1 --threads 16 --hint throughput --json
onevit bench --model $T --batch 8 --threads 16 --hint throughput --json
onevit bench --model $T --batch 1 --json   # threads chosen by the cost model
onevit bench --model $B --batch 1 --json
RUN
chmod +x "$OUT/run_table.sh"
du -sh "$OUT"
