#!/usr/bin/env bash
# What metrics and the stall detector cost: runs weft-bench with them on (the default) and
# off (WEFT_METRICS=off), alternating, ROUNDS times each, and prints each benchmark's median
# across rounds for both and their ratio. Alternating spreads a slow spell on a shared
# machine over both.
#
# Usage: apps/bench/metrics-cost.sh [PATH-TO-weft-bench] [FILTER]
#        (default build/apps/bench/weft-bench; FILTER as for weft-bench)
# Environment: ROUNDS (default 5), WORKERS (default 2).
#   MODE=instructions counts instructions instead, with valgrind's callgrind: for each
#   benchmark, with metrics on and off, the instructions of REPS=3 minus those of REPS=1 (no
#   warm-ups), which cancels the runtime's start-up and shutdown. Instruction counts repeat
#   from run to run whatever else the machine does, so they show a cost of a few percent that
#   the timings' noise hides; they do not see cache misses or contention.
set -euo pipefail

if [[ ${MODE:-time} == instructions ]]; then
  command -v valgrind >/dev/null || { echo "metrics-cost: MODE=instructions needs valgrind" >&2; exit 1; }
  script_dir=$(cd "$(dirname "$0")" && pwd)
  repo=$(git -C "$script_dir" rev-parse --show-toplevel)
  weft_bench=${1:-$repo/build/apps/bench/weft-bench}
  export WORKERS=${WORKERS:-2} WARMUPS=0
  count() { # count REPS METRICS NAME -> instructions
    REPS=$1 WEFT_METRICS=$2 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
      "$weft_bench" "$3" 2>&1 >/dev/null | awk '/Collected :/ { print $NF }'
  }
  echo "# weft-bench instructions with metrics and stall detector on vs off (callgrind)"
  echo
  echo "- command: \`MODE=instructions WORKERS=$WORKERS apps/bench/metrics-cost.sh $*\`"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "| benchmark | on (instructions per 2 reps) | off | on / off |"
  echo "|---|---:|---:|---:|"
  for name in ${2:-spawn_many_local spawn_many_remote yield_many ping_pong chained_spawn mpsc_throughput mutex_contended}; do
    on=$(( $(count 3 on "$name") - $(count 1 on "$name") ))
    off=$(( $(count 3 off "$name") - $(count 1 off "$name") ))
    echo "| $name | $on | $off | $(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }') |"
  done
  exit 0
fi

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
