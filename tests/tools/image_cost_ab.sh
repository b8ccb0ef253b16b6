#!/usr/bin/env bash
# Two image_cost binaries (tests/tools/image_cost.cpp) interleaved: PAIRS runs of each,
# alternating, on the photos; prints every run and the median of each figure per binary.
#
#   tests/tools/image_cost_ab.sh OLD_IMAGE_COST NEW_IMAGE_COST [PAIRS] [PHOTO_DIR]
#       (default 5 pairs, ../shared/data/imagenet-sample; about 10 s a run)
#
# CPU time per image (the thread's clock), so other processes change it less than wall time;
# the load is printed before and after.
set -euo pipefail
cd "$(dirname "$0")/../.."
old=$1 new=$2 pairs=${3:-5} photos=${4:-../shared/data/imagenet-sample}
echo "load before: $(cat /proc/loadavg)"
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
for ((i = 0; i < pairs; ++i)); do
  for side in old new; do
    bin=$old
    [[ $side == new ]] && bin=$new
    line=$("$bin" --rounds 3 "$photos" | tail -1)
    echo "$side $line"
    echo "$side $line" >> "$runs"
  done
done
echo "load after: $(cat /proc/loadavg)"
# Each run's line is "name value name value ...": the median per binary and name.
for side in old new; do
  fields=$(grep "^$side " "$runs" | head -1 | awk '{ for (i = 2; i < NF; i += 2) print $i }')
  printf "%s median:" "$side"
  for field in $fields; do
    printf " %s %s" "$field" "$(grep "^$side " "$runs" |
      awk -v f="$field" '{ for (i = 2; i < NF; i += 2) if ($i == f) print $(i + 1) }' |
      sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
  done
  printf "\n"
done
