#!/usr/bin/env bash
# What metrics and the stall detector cost: runs each weft-bench benchmark with them on (the
# default) and off (WEFT_METRICS=off), back to back, ROUNDS times, and prints for each
# benchmark the ratio of its medians and the median of its per-round ratios. The two runs of
# a round share whatever spell the shared machine is in, so the per-round ratio cancels it.
#
# Usage: apps/bench/metrics-cost.sh [PATH-TO-weft-bench] [NAMES]
#        (default build/apps/bench/weft-bench and every benchmark; NAMES space-separated)
# Environment: ROUNDS (default 5), WORKERS (default 2).
#   MODE=aa runs both sides with metrics off: an A/A test, whose ratios show how far apart two
#   identical configurations read on this machine, the resolution of the timed comparison.
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
names=${2:-spawn_many_local spawn_many_remote yield_many ping_pong chained_spawn mpsc_throughput mutex_contended}
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# Each round runs every benchmark on and off back to back (which goes first alternates), so
# the two runs of a pair share the machine's spell; the per-round ratio cancels it.
for round in $(seq "$ROUNDS"); do
  for name in $names; do
    if ((round % 2)); then order="on off"; else order="off on"; fi
    for mode in $order; do
      setting=$mode
      [[ ${MODE:-time} == aa ]] && setting=off
      WEFT_METRICS=$setting "$weft_bench" "$name" | awk -v r="$round" '{ print r, $1, $2 }' >>"$results/$mode"
    done
  done
done

if [[ ${MODE:-time} == aa ]]; then
  echo "# weft-bench A/A: metrics off on both sides ($ROUNDS rounds, ns per unit)"
else
  echo "# weft-bench with metrics and stall detector on vs off ($ROUNDS rounds, ns per unit)"
fi
echo
echo "- command: \`${MODE:+MODE=$MODE }ROUNDS=$ROUNDS WORKERS=$WORKERS apps/bench/metrics-cost.sh $*\`"
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- median on / off: the ratio of the medians; per round: the median of each round's ratio"
echo
echo "| benchmark | median on | median off | median on / off | per round on / off |"
echo "|---|---:|---:|---:|---:|"
python3 - "$results/on" "$results/off" $names <<'PY'
import statistics, sys
def load(path):
    runs = {}
    for line in open(path):
        r, name, value = line.split()
        runs[(name, int(r))] = float(value)
    return runs
on, off = load(sys.argv[1]), load(sys.argv[2])
for name in sys.argv[3:]:
    rounds = sorted(r for (n, r) in on if n == name and (n, r) in off)
    if not rounds:
        continue
    a = statistics.median(on[(name, r)] for r in rounds)
    b = statistics.median(off[(name, r)] for r in rounds)
    per_round = statistics.median(on[(name, r)] / off[(name, r)] for r in rounds)
    print(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.3f} | {per_round:.3f} |")
PY
