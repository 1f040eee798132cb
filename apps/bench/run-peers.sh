#!/usr/bin/env bash
# Runs weft-bench and the peer scheduler benchmarks (Tokio, Go, oneTBB) in turn, ROUNDS times,
# and prints a markdown table of each program's median across rounds of its per-round medians.
# The programs alternate within each round, in an order rotated from round to round, so a
# slow spell on the machine hits all of them rather than one.
#
# Usage: apps/bench/run-peers.sh [PATH-TO-weft-bench]   (default: build/apps/bench/weft-bench)
# Environment:
#   WORKERS  worker threads for every program (GOMAXPROCS for Go); default 2
#   ROUNDS   how many times each program runs; default 3
#   ANCHORS  where the peers are (built there with shared/anchors/build when missing);
#            default /tmp/weft-anchors
#   WEFT_ANCHORS_SRC  the anchors' sources, used when ../shared/anchors beside the repo is absent
set -euo pipefail

WORKERS=${WORKERS:-2}
ROUNDS=${ROUNDS:-3}
ANCHORS=${ANCHORS:-/tmp/weft-anchors}

# Recorded before anything changes directory, so the header shows what was typed.
command_line="WORKERS=$WORKERS ROUNDS=$ROUNDS ANCHORS=$ANCHORS $(printf '%q' "$0")"
for arg in "$@"; do command_line+=" $(printf '%q' "$arg")"; done

script_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$script_dir" rev-parse --show-toplevel)
weft_bench=${1:-$repo/build/apps/bench/weft-bench}
if [[ ! -x $weft_bench ]]; then
  echo "run-peers: no weft-bench at $weft_bench (build it with: ninja -C build)" >&2
  exit 1
fi

# shellcheck source=anchors.sh
source "$script_dir/anchors.sh"
ensure_anchors run-peers tokio-sched-bench go-sched-bench tbb-sched-bench

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

echo "# weft vs peers: scheduler micro-benchmarks (median ns per unit)"
echo
echo "- command: \`$command_line\`"
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- nproc: $(nproc)"
echo

# Each program under the same thread count; Go reads it from GOMAXPROCS.
run_program() {
  case $1 in
    weft) WORKERS=$WORKERS "$weft_bench" ;;
    tokio) WORKERS=$WORKERS "$ANCHORS/tokio-sched-bench" ;;
    go) GOMAXPROCS=$WORKERS "$ANCHORS/go-sched-bench" ;;
    tbb) WORKERS=$WORKERS "$ANCHORS/tbb-sched-bench" ;;
  esac
}

programs=(weft tokio go tbb)
for ((round = 1; round <= ROUNDS; round++)); do
  # Round R starts with the R-th program and wraps around, so that no program always runs
  # first, or always right after the same peer.
  for ((i = 0; i < ${#programs[@]}; i++)); do
    program=${programs[((round - 1 + i) % ${#programs[@]})]}
    out=$results/$program.$round
    run_program "$program" >"$out"
    echo "round $round/$ROUNDS, $program:"
    sed 's/^/    /' "$out"
  done
done
echo

python3 - "$results" "$ROUNDS" "${programs[@]}" <<'EOF'
import statistics
import sys

results, rounds, programs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
peers = [p for p in programs if p != "weft"]

# per_round[program][benchmark] = [median of round 1, median of round 2, ...]
per_round = {p: {} for p in programs}
order = []  # benchmarks in the order they first appear, weft's first
for program in programs:
    for r in range(1, rounds + 1):
        with open(f"{results}/{program}.{r}") as f:
            for line in f:
                fields = line.split()
                if len(fields) != 2:
                    continue
                name, value = fields[0], float(fields[1])
                per_round[program].setdefault(name, []).append(value)
                if name not in order:
                    order.append(name)

def median(program, name):
    values = per_round[program].get(name)
    return statistics.median(values) if values else None

def cell(value):
    return "—" if value is None else f"{value:.1f}"

def per_round_ratio(name):
    # Within a round the programs run back to back, so a spell of the machine that lasts the
    # round cancels out of weft's ratio to the best peer of that same round.
    weft = per_round["weft"].get(name)
    if not weft:
        return None
    ratios = []
    for r in range(len(weft)):
        best = [per_round[p][name][r] for p in peers
                if name in per_round[p] and r < len(per_round[p][name])]
        if best:
            ratios.append(weft[r] / min(best))
    return statistics.median(ratios) if ratios else None

print("| benchmark | " + " | ".join(programs) +
      " | best peer | weft / best peer | per round: weft / best peer |")
print("|---|" + "---:|" * len(programs) + "---|---:|---:|")
for name in order:
    medians = {p: median(p, name) for p in programs}
    peer_values = [(medians[p], p) for p in peers if medians[p] is not None]
    best = min(peer_values) if peer_values else None
    best_cell = "—" if best is None else f"{best[1]} {best[0]:.1f}"
    weft = medians.get("weft")
    ratio = "—" if weft is None or best is None else f"{weft / best[0]:.2f}"
    round_ratio = per_round_ratio(name)
    round_cell = "—" if round_ratio is None else f"{round_ratio:.2f}"
    row = [name] + [cell(medians[p]) for p in programs] + [best_cell, ratio, round_cell]
    print("| " + " | ".join(row) + " |")
print()
print(f"Each program cell is the median over {rounds} round(s) (mean of the middle two for an"
      " even count) of that program's median ns per unit; lower is better. The last column is"
      " the median over rounds of weft's ratio to the best peer in the same round. — means the"
      " program has no such benchmark.")
EOF
