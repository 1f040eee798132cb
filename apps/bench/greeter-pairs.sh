#!/usr/bin/env bash
# Where a greeter's CPU goes: weft-greeter and epoll-greeter (the hand-written floor) in
# alternating pairs, each driven by the same weft-load run, with the server's user and system
# time per dialog (from /proc) and, when perf can attach, its system calls and context
# switches per dialog (raw_syscalls:sys_enter, context-switches).
#
# With a second greeter binary, each pair becomes a triple: the build's greeter, the other
# one, and the floor. That is how to A/B a change (a scratch build, a different compiler
# flag) without trusting two runs minutes apart: the machine's slow and fast spells last
# minutes, a triple a few seconds.
#
# Usage: apps/bench/greeter-pairs.sh [BUILD-DIR [OTHER-GREETER]]   (default: build)
# Environment:
#   PAIRS        how many pairs (or triples); default 8
#   THREADS      server threads; default 2
#   CONNECTIONS  concurrent clients; default 100
#   DIALOGS      dialogs per measured run; default 30000
#   SOURCE_ADDRESSES  the load's source addresses (weft-load --source-addresses); default 1.
#                4 for CONNECTIONS=10000, as the scaling table uses, so that TIME_WAIT
#                cannot run a run out of (source, destination) pairs
#   ANCHORS      where the peers are (built with shared/anchors/build when missing)
set -euo pipefail

PAIRS=${PAIRS:-8}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-100}
DIALOGS=${DIALOGS:-30000}
SOURCE_ADDRESSES=${SOURCE_ADDRESSES:-1}
ANCHORS=${ANCHORS:-/tmp/weft-anchors}

script_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$script_dir" rev-parse --show-toplevel)
build=${1:-$repo/build}
other=${2:-}
load=$build/apps/load/weft-load
greeter=$build/apps/greeter/weft-greeter
for program in "$load" "$greeter" ${other:+"$other"}; do
  [[ -x $program ]] || { echo "greeter-pairs: missing $program" >&2; exit 1; }
done
# shellcheck source=anchors.sh
source "$script_dir/anchors.sh"
ensure_anchors greeter-pairs epoll-greeter

results=$(mktemp -d)
server_pid=
perf_pid=
cleanup() {
  [[ -n $perf_pid ]] && kill "$perf_pid" 2>/dev/null || true
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$results"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
ticks=$(getconf CLK_TCK)
# perf needs the tracepoints (root, or a permissive perf_event_paranoid); without them the
# counts print as dashes and the times alone are measured.
has_perf=0
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
  has_perf=1
fi

measure() {  # measure NAME: sets `measured` to "user sys total syscalls switches", per dialog
  # (not printed for a command substitution: a subshell would not run the EXIT trap
  # that stops a server left behind by a failed run)
  local name=$1 port u0 s0 u1 s1 calls=- switches=-
  port=$((10000 + RANDOM % 20000))  # below the ephemeral range
  case $name in
    weft) "$greeter" --port "$port" --threads "$THREADS" --quiet --read-timeout 120s >/dev/null 2>&1 & ;;
    other) "$other" --port "$port" --threads "$THREADS" --quiet --read-timeout 120s >/dev/null 2>&1 & ;;
    epoll) PORT=$port THREADS=$THREADS "$ANCHORS/epoll-greeter" >/dev/null 2>&1 & ;;
  esac
  server_pid=$!
  local started=0
  for _ in $(seq 1 200); do
    if "$load" --port "$port" -c 1 -n 1 --threads 1 --timeout 1s >/dev/null 2>&1; then
      started=1
      break
    fi
    sleep 0.05
  done
  ((started)) || { echo "greeter-pairs: $name did not start on port $port" >&2; exit 1; }
  "$load" --port "$port" -c "$CONNECTIONS" -n 2000 --threads "$THREADS" >/dev/null  # warm-up
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$server_pid/stat")
  if ((has_perf)); then
    perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$server_pid" \
      -o "$results/perf" &
    perf_pid=$!
    sleep 0.2  # perf attaches before the measured run starts
  fi
  "$load" --port "$port" -c "$CONNECTIONS" -n "$DIALOGS" --threads "$THREADS" \
    --source-addresses "$SOURCE_ADDRESSES" --timeout 60s >/dev/null ||
    { echo "greeter-pairs: $name failed dialogs" >&2; exit 1; }
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$server_pid/stat")
  if ((has_perf)); then
    kill -INT "$perf_pid"
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=
    calls=$(awk -F, '/sys_enter/ {print $1}' "$results/perf")
    switches=$(awk -F, '/context-switches/ {print $1}' "$results/perf")
  fi
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  measured=$(awk -v n="$DIALOGS" -v hz="$ticks" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v c="$calls" \
    -v w="$switches" 'BEGIN {
      f = 1e6 / hz / n
      printf "%.1f %.1f %.1f %s %s\n", u * f, s * f, (u + s) * f,
        c == "-" ? "-" : sprintf("%.2f", c / n), w == "-" ? "-" : sprintf("%.3f", w / n)
    }')
}

median() { sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

names=(weft)
[[ -n $other ]] && names+=(other)
names+=(epoll)
echo "Command: \`PAIRS=$PAIRS THREADS=$THREADS CONNECTIONS=$CONNECTIONS DIALOGS=$DIALOGS SOURCE_ADDRESSES=$SOURCE_ADDRESSES $(printf '%q' "$0") $*\` at $(git -C "$repo" rev-parse --short HEAD), $(nproc) cores."
[[ -n $other ]] && echo "other: $other"
echo
echo "| pair | server | user (us) | sys (us) | CPU-us/dialog | system calls | context switches | vs epoll |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for pair in $(seq 1 "$PAIRS"); do
  declare -A line=()
  for name in "${names[@]}"; do
    measure "$name"
    line[$name]=$measured
  done
  floor=$(awk '{print $3}' <<<"${line[epoll]}")
  for name in "${names[@]}"; do
    read -r user sys total calls switches <<<"${line[$name]}"
    ratio=$(awk -v a="$total" -v b="$floor" 'BEGIN{printf "%.3f", a / b}')
    echo "$ratio" >>"$results/ratio-$name"
    [[ $name == other ]] &&
      awk -v a="$total" -v b="$(awk '{print $3}' <<<"${line[weft]}")" \
        'BEGIN{printf "%.3f\n", a / b}' >>"$results/other-vs-weft"
    echo "| $pair | $name | $user | $sys | $total | $calls | $switches | $ratio |"
  done
done
echo
for name in "${names[@]}"; do
  [[ $name == epoll ]] && continue
  echo "$name vs epoll, median of the pairs: $(median <"$results/ratio-$name")"
done
[[ -n $other ]] && echo "other vs weft, median of the triples: $(median <"$results/other-vs-weft")"
exit 0
