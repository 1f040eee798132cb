#!/usr/bin/env bash
# The greeter benchmark: weft-greeter beside tokio-greeter, go-greeter and epoll-greeter (the
# hand-written floor) from ../shared/anchors, all with the same weft-load settings, each run
# ROUNDS times in alternation so that a slow spell on the machine hits every server alike.
# Prints a markdown table of each server's median per round: dialogs/s, p99 latency, and the
# server's CPU time (user+sys, from /proc) per dialog, with ratios to the floor and to Tokio.
#
# Usage: apps/bench/greeter-peers.sh [BUILD-DIR]   (default: build)
# Environment:
#   THREADS      server threads (WORKERS for Tokio, GOMAXPROCS for Go); default 2
#   CONNECTIONS  concurrent clients; default 100
#   DIALOGS      dialogs per run; default 30000
#   ROUNDS       runs per server; default 3
#   ANCHORS      where the peers are (built with shared/anchors/build when missing)
set -euo pipefail

THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-100}
DIALOGS=${DIALOGS:-30000}
ROUNDS=${ROUNDS:-3}
ANCHORS=${ANCHORS:-/tmp/weft-anchors}
command_line="THREADS=$THREADS CONNECTIONS=$CONNECTIONS DIALOGS=$DIALOGS ROUNDS=$ROUNDS $(printf '%q' "$0") $*"

script_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$script_dir" rev-parse --show-toplevel)
build=${1:-$repo/build}
load=$build/apps/load/weft-load
greeter=$build/apps/greeter/weft-greeter
for program in "$load" "$greeter"; do
  [[ -x $program ]] || { echo "greeter-peers: missing $program (ninja -C $build)" >&2; exit 1; }
done
if [[ ! -x $ANCHORS/epoll-greeter || ! -x $ANCHORS/tokio-greeter || ! -x $ANCHORS/go-greeter ]]; then
  anchors_src=$repo/../shared/anchors
  [[ -x $anchors_src/build ]] || anchors_src=${WEFT_ANCHORS_SRC:-}
  [[ -n $anchors_src && -x $anchors_src/build ]] ||
    { echo "greeter-peers: anchors not found; set WEFT_ANCHORS_SRC" >&2; exit 1; }
  "$anchors_src/build" "$ANCHORS" >&2
fi

results=$(mktemp -d)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$results"
}
trap cleanup EXIT

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_server() {  # start_server NAME PORT; sets server_pid
  case $1 in
    weft) "$greeter" --port "$2" --threads "$THREADS" --quiet >/dev/null 2>&1 & ;;
    tokio) PORT=$2 WORKERS=$THREADS "$ANCHORS/tokio-greeter" >/dev/null 2>&1 & ;;
    go) PORT=$2 GOMAXPROCS=$THREADS "$ANCHORS/go-greeter" >/dev/null 2>&1 & ;;
    epoll) PORT=$2 THREADS=$THREADS "$ANCHORS/epoll-greeter" >/dev/null 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 1 200); do
    "$load" --port "$2" -c 1 -n 1 --threads 1 --timeout 1s >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "greeter-peers: $1 did not start on port $2" >&2
  exit 1
}

servers=(weft tokio go epoll)
for round in $(seq 1 "$ROUNDS"); do
  for server in "${servers[@]}"; do
    port=$((20000 + RANDOM % 20000))
    start_server "$server" "$port"
    "$load" --port "$port" -c "$CONNECTIONS" -n 2000 --threads "$THREADS" >/dev/null  # warm-up
    before=$(cpu_ticks "$server_pid")
    json=$("$load" --port "$port" -c "$CONNECTIONS" -n "$DIALOGS" --threads "$THREADS" --json) ||
      { echo "greeter-peers: $server failed dialogs: $json" >&2; exit 1; }
    after=$(cpu_ticks "$server_pid")
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
    rate=$(sed -E 's/.*"dialogs_per_second":([0-9.]+).*/\1/' <<<"$json")
    p99=$(sed -E 's/.*"p99":([0-9]+).*/\1/' <<<"$json")
    cpu_us=$(awk -v t=$((after - before)) -v hz="$ticks" -v n="$DIALOGS" 'BEGIN{printf "%.2f", t / hz * 1e6 / n}')
    echo "$rate $p99 $cpu_us" >>"$results/$server"
    echo "round $round $server: $rate dialogs/s, p99 ${p99} us, ${cpu_us} CPU-us/dialog" >&2
  done
done

median() { sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
declare -A rate p99 cpu
for server in "${servers[@]}"; do
  rate[$server]=$(awk '{print $1}' "$results/$server" | median)
  p99[$server]=$(awk '{print $2}' "$results/$server" | median)
  cpu[$server]=$(awk '{print $3}' "$results/$server" | median)
done

echo "Command: \`$command_line\` at $(git -C "$repo" rev-parse --short HEAD), $(nproc) cores."
echo
echo "| server | dialogs/s | p99 (us) | server CPU-us/dialog | CPU vs epoll | CPU vs Tokio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for server in "${servers[@]}"; do
  awk -v s="$server" -v r="${rate[$server]}" -v p="${p99[$server]}" -v c="${cpu[$server]}" \
      -v e="${cpu[epoll]}" -v t="${cpu[tokio]}" \
      'BEGIN{printf "| %s | %.0f | %d | %.1f | %.2f | %.2f |\n", s, r, p, c, c/e, c/t}'
done
