#!/usr/bin/env bash
# The greeter benchmark: weft-greeter beside tokio-greeter, go-greeter and epoll-greeter (the
# hand-written floor) from ../shared/anchors, all with the same weft-load settings, each run
# ROUNDS times in alternation so that a slow spell on the machine hits every server alike
# (each round in a rotated order).
# Three tables, in markdown:
#   throughput  each server's median per round of dialogs/s, p99 latency, and the server's CPU
#               time (user+sys, from /proc) per dialog, with ratios to the floor and to Tokio;
#   held        HELD connections held open at once (weft-load --hold): the server's resident
#               memory above its idle size, per connection;
#   scaling     server CPU per dialog at 100, 1,000 and 10,000 concurrent clients, ROUNDS
#               rounds, with the median of each round's ratio of 10,000 to 100.
#
# Usage: apps/bench/greeter-peers.sh [BUILD-DIR]   (default: build)
# Environment:
#   THREADS      server threads (WORKERS for Tokio, GOMAXPROCS for Go); default 2
#   CONNECTIONS  concurrent clients for the throughput table; default 100
#   DIALOGS      dialogs per run; default 30000
#   ROUNDS       throughput and scaling rounds; default 3
#   HELD         connections for the held table; default 10000
#   MODES        which tables, default "throughput held scaling"
#   SERVERS      which servers, default "weft tokio go epoll"; SERVERS="weft epoll" pairs
#                weft with the floor alone, so that the two runs of a round are seconds apart
#   ANCHORS      where the peers are (built with shared/anchors/build when missing)
set -euo pipefail

THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-100}
DIALOGS=${DIALOGS:-30000}
ROUNDS=${ROUNDS:-3}
HELD=${HELD:-10000}
MODES=${MODES:-throughput held scaling}
SERVERS=${SERVERS:-weft tokio go epoll}
ANCHORS=${ANCHORS:-/tmp/weft-anchors}
command_line="THREADS=$THREADS CONNECTIONS=$CONNECTIONS DIALOGS=$DIALOGS ROUNDS=$ROUNDS HELD=$HELD MODES=\"$MODES\" SERVERS=\"$SERVERS\" $(printf '%q' "$0") $*"

script_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$script_dir" rev-parse --show-toplevel)
build=${1:-$repo/build}
load=$build/apps/load/weft-load
greeter=$build/apps/greeter/weft-greeter
for program in "$load" "$greeter"; do
  [[ -x $program ]] || { echo "greeter-peers: missing $program (ninja -C $build)" >&2; exit 1; }
done
# shellcheck source=anchors.sh
source "$script_dir/anchors.sh"
ensure_anchors greeter-peers epoll-greeter tokio-greeter go-greeter

results=$(mktemp -d)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$results"
}
trap cleanup EXIT

# Every server and client gets the hard descriptor limit (10,000 held connections need it).
ulimit -n "$(ulimit -Hn)"
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_server() {  # start_server NAME PORT; sets server_pid
  case $1 in
    weft) "$greeter" --port "$2" --threads "$THREADS" --quiet --read-timeout 120s >/dev/null 2>&1 & ;;
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

median() { sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
read -ra servers <<<"$SERVERS"
for server in "${servers[@]}"; do
  case $server in
    weft | tokio | go | epoll) ;;
    *) echo "greeter-peers: unknown server $server (SERVERS takes weft, tokio, go, epoll)" >&2; exit 2 ;;
  esac
done
has_server() { [[ " ${servers[*]} " == *" $1 "* ]]; }
# Round R starts with the R-th server and wraps around, so that no server always runs first,
# or always right after the same peer: an effect of the order then lands on each in turn.
in_order_of_round() {  # in_order_of_round ROUND -> the servers, one per line
  local i n=${#servers[@]}
  for ((i = 0; i < n; i++)); do echo "${servers[(($1 - 1 + i) % n)]}"; done
}
cpu_per_dialog() {  # cpu_per_dialog TICKS DIALOGS
  awk -v t="$1" -v hz="$ticks" -v n="$2" 'BEGIN{printf "%.2f", t / hz * 1e6 / n}'
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

echo "Command: \`$command_line\` at $(git -C "$repo" rev-parse --short HEAD), $(nproc) cores."

throughput() {
  declare -A rate p99 cpu
  for round in $(seq 1 "$ROUNDS"); do
    for server in $(in_order_of_round "$round"); do
      port=$((10000 + RANDOM % 20000))  # below the ephemeral range
      start_server "$server" "$port"
      "$load" --port "$port" -c "$CONNECTIONS" -n 2000 --threads "$THREADS" >/dev/null  # warm-up
      before=$(cpu_ticks "$server_pid")
      json=$("$load" --port "$port" -c "$CONNECTIONS" -n "$DIALOGS" --threads "$THREADS" --json) ||
        { echo "greeter-peers: $server failed dialogs: $json" >&2; exit 1; }
      after=$(cpu_ticks "$server_pid")
      kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
      r=$(sed -E 's/.*"dialogs_per_second":([0-9.]+).*/\1/' <<<"$json")
      p=$(sed -E 's/.*"p99":([0-9]+).*/\1/' <<<"$json")
      c=$(cpu_per_dialog $((after - before)) "$DIALOGS")
      echo "$r $p $c" >>"$results/$server"
      echo "round $round $server: $r dialogs/s, p99 ${p} us, ${c} CPU-us/dialog" >&2
    done
  done
  for server in "${servers[@]}"; do
    rate[$server]=$(awk '{print $1}' "$results/$server" | median)
    p99[$server]=$(awk '{print $2}' "$results/$server" | median)
    cpu[$server]=$(awk '{print $3}' "$results/$server" | median)
  done
  echo
  echo "Throughput, $CONNECTIONS clients, $DIALOGS dialogs, median of $ROUNDS rounds:"
  echo
  echo "| server | dialogs/s | p99 (us) | server CPU-us/dialog | CPU vs epoll | CPU vs Tokio | per round vs epoll | per round vs Tokio | dialogs/s per round vs Tokio | p99 per round vs Tokio |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  # The per-round columns: the median over rounds of the ratio within each round, where the
  # servers ran back to back. A spell of the machine that lasts a round cancels out of these.
  # A peer left out of SERVERS gets a dash.
  # p99 is bimodal on the development machine: a run's p99 lands near one of two values,
  # whatever the server, so the median p99s can set one server's low mode against another's
  # high one. The per-round ratio compares runs made seconds apart.
  per_round() {  # per_round SERVER PEER [COLUMN] -> median of SERVER/PEER ratios, round by
    # round, of COLUMN (1 dialogs/s, 2 p99, 3 CPU per dialog; default 3)
    has_server "$2" || { echo "—"; return; }
    local column=${3:-3}
    paste -d' ' <(awk -v c="$column" '{print $c}' "$results/$1") \
      <(awk -v c="$column" '{print $c}' "$results/$2") |
      awk '{print $1 / $2}' | median | awk '{printf "%.2f", $1}'
  }
  of_medians() {  # of_medians SERVER PEER -> the ratio of their median CPU per dialog
    has_server "$2" || { echo "—"; return; }
    awk -v a="${cpu[$1]}" -v b="${cpu[$2]}" 'BEGIN{printf "%.2f", a / b}'
  }
  for server in "${servers[@]}"; do
    printf '| %s | %.0f | %.0f | %.1f | %s | %s | %s | %s | %s | %s |\n' "$server" \
      "${rate[$server]}" "${p99[$server]}" "${cpu[$server]}" "$(of_medians "$server" epoll)" \
      "$(of_medians "$server" tokio)" "$(per_round "$server" epoll)" \
      "$(per_round "$server" tokio)" "$(per_round "$server" tokio 1)" \
      "$(per_round "$server" tokio 2)"
  done
}

held() {
  echo
  echo "$HELD connections held open at once (weft-load -c $HELD --hold 20s):"
  echo
  echo "| server | idle RSS (KiB) | RSS with all held (KiB) | bytes per connection |"
  echo "| --- | ---: | ---: | ---: |"
  for server in "${servers[@]}"; do
    port=$((10000 + RANDOM % 20000))  # below the ephemeral range
    start_server "$server" "$port"
    "$load" --port "$port" -c 100 -n 2000 --threads "$THREADS" >/dev/null  # warm-up
    idle=$(rss_kib "$server_pid")
    base_fds=$(fd_count "$server_pid")
    "$load" --port "$port" -c "$HELD" -n "$HELD" --hold 20s --threads "$THREADS" \
      --source-addresses 4 >/dev/null 2>&1 &
    load_pid=$!
    peak=0
    for _ in $(seq 1 300); do  # at most 30 s for every connection to be open
      if (( $(fd_count "$server_pid") - base_fds >= HELD )); then
        sleep 1  # let the prompts go out and the buffers settle
        peak=$(rss_kib "$server_pid")
        break
      fi
      sleep 0.1
    done
    kill "$load_pid" 2>/dev/null; wait "$load_pid" 2>/dev/null || true
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
    if (( peak == 0 )); then
      echo "| $server | $idle | (never reached $HELD) | — |"
    else
      awk -v s="$server" -v i="$idle" -v p="$peak" -v n="$HELD" \
        'BEGIN{printf "| %s | %d | %d | %.0f |\n", s, i, p, (p - i) * 1024 / n}'
    fi
  done
}

scaling() {
  # Each round runs every server at the three concurrencies back to back, so the per-round
  # ratio 10,000 / 100 compares runs made in the same spell of the machine.
  for round in $(seq 1 "$ROUNDS"); do
    for server in $(in_order_of_round "$round"); do
      for clients in 100 1000 10000; do
        port=$((10000 + RANDOM % 20000))  # below the ephemeral range
        start_server "$server" "$port"
        "$load" --port "$port" -c 100 -n 2000 --threads "$THREADS" >/dev/null  # warm-up
        before=$(cpu_ticks "$server_pid")
        json=$("$load" --port "$port" -c "$clients" -n "$DIALOGS" --threads "$THREADS" \
          --source-addresses 4 --timeout 60s --json) || true
        after=$(cpu_ticks "$server_pid")
        kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
        # CPU per dialog that succeeded; a failed dialog is not a data point to average in.
        ok=$(sed -nE 's/.*"dialogs":([0-9]+).*/\1/p' <<<"$json")
        failed=$(sed -nE 's/.*"failed":([0-9]+).*/\1/p' <<<"$json")
        if [[ -z $ok || $ok -eq 0 ]]; then
          echo "greeter-peers: $server completed no dialog at $clients clients: $json" >&2
          exit 1
        fi
        if (( failed > 0 )); then
          echo "greeter-peers: $server had $failed failed dialogs at $clients clients" >&2
          echo "$server $clients $failed" >>"$results/scaling-failures"
        fi
        c=$(cpu_per_dialog $((after - before)) "$ok")
        echo "$round $clients $c" >>"$results/scaling-$server"
        echo "scaling round $round $server $clients: $c CPU-us/dialog" >&2
      done
    done
  done
  echo
  echo "Server CPU-us per dialog as concurrency grows ($DIALOGS dialogs each, median of $ROUNDS rounds):"
  echo
  echo "| server | 100 clients | 1,000 clients | 10,000 clients | 10,000 / 100 | per round 10,000 / 100 |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for server in "${servers[@]}"; do
    file=$results/scaling-$server
    at() { awk -v n="$1" '$2 == n {print $3}' "$file" | median; }
    per_round=$(awk '$2 == 100 {a[$1] = $3} $2 == 10000 {b[$1] = $3}
                     END {for (r in a) if (r in b) print b[r] / a[r]}' "$file" | median)
    awk -v s="$server" -v a="$(at 100)" -v b="$(at 1000)" -v c="$(at 10000)" -v r="$per_round" \
      'BEGIN{printf "| %s | %.1f | %.1f | %.1f | %.2f | %.2f |\n", s, a, b, c, c/a, r}'
  done
  if [[ -s $results/scaling-failures ]]; then
    echo
    echo "Failed dialogs (CPU above is per successful dialog):"
    awk '{printf "- %s at %s clients: %s failed\n", $1, $2, $3}' "$results/scaling-failures"
  fi
}

for mode in $MODES; do
  case $mode in
    throughput | held | scaling) "$mode" ;;
    *) echo "greeter-peers: unknown mode $mode" >&2; exit 2 ;;
  esac
done
