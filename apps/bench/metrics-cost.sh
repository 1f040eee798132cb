#!/usr/bin/env bash
# What metrics and the stall detector cost: runs weft-bench with them on (the default) and
# off (WEFT_METRICS=off), alternating, ROUNDS times each, and prints each benchmark's median
# across rounds for both and their ratio. Alternating spreads a slow spell on a shared
# machine over both.
#
# Usage: apps/bench/metrics-cost.sh [PATH-TO-weft-bench] [FILTER]
#        (default build/apps/bench/weft-bench; FILTER as for weft-bench)
# Environment: ROUNDS (default 5), WORKERS (default 2).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
export WORKERS=${WORKERS:-2}
script_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$script_dir" rev-parse --show-toplevel)
weft_bench=${1:-$repo/build/apps/bench/weft-bench}
filter=${2:-}
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

for round in $(seq "$ROUNDS"); do
  "$weft_bench" $filter >>"$results/on"
  WEFT_METRICS=off "$weft_bench" $filter >>"$results/off"
done

median() { # name file
  awk -v n="$1" '$1 == n { print $2 }' "$2" | sort -g | awk '{ v[NR] = $1 } END { print v[int(NR / 2) + 1] }'
}

echo "# weft-bench with metrics and stall detector on vs off (median ns per unit of $ROUNDS rounds)"
echo
echo "- command: \`ROUNDS=$ROUNDS WORKERS=$WORKERS apps/bench/metrics-cost.sh $*\`"
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo
echo "| benchmark | on | off | on / off |"
echo "|---|---:|---:|---:|"
for name in $(awk '{ print $1 }' "$results/on" | awk '!seen[$0]++'); do
  on=$(median "$name" "$results/on")
  off=$(median "$name" "$results/off")
  ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')
  echo "| $name | $on | $off | $ratio |"
done
