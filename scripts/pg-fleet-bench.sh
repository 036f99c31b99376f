#!/usr/bin/env bash
# Relata nodes over one PostgreSQL database, driven by one bench, with the CPU each
# process used.
#
#   scripts/pg-fleet-bench.sh [NODES] [-- BENCH FLAGS...]
#
# NODES (default 2) `relata serve --datastore` processes share a new database on the
# PostgreSQL of $RELATA_TEST_POSTGRES (start one with scripts/postgres-dev.sh). The
# data set is loaded through the first node; then one `relata bench --skip-load
# --more-endpoints …` spreads its calls over all nodes (default phases: check-min at
# c64 and the mixed phase at 1% writes, 20 s each; flags after -- are added to the
# bench's and may override them, e.g. -- --tenants 10 --users 7500 --flows 10000).
# It prints the bench's table, then the CPU seconds of each node, of PostgreSQL (the
# postmaster and its children, exited backends included) and of the bench during the
# measured phases, with each process's share of the total. Every answer is checked
# against the ground truth, as in `relata bench`; the exit code is the bench's.
#
# $RELATA_BIN is the binary (default: go build ./cmd/relata into a temporary
# directory). The PostgreSQL must run on this machine (its CPU is read from /proc).
set -euo pipefail

nodes=2
if [ $# -gt 0 ] && [ "$1" != "--" ]; then nodes=$1; shift; fi
[ "${1:-}" = "--" ] && shift
: "${RELATA_TEST_POSTGRES:?set it (eval \"\$(scripts/postgres-dev.sh start)\")}"

work=$(mktemp -d "${TMPDIR:-/tmp}/relata-fleet.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

bin=${RELATA_BIN:-}
if [ -z "$bin" ]; then
  bin=$work/relata
  go build -o "$bin" ./cmd/relata
fi

db=relata_fleet_$$
base=${RELATA_TEST_POSTGRES%%\?*}
base=${base%/*}
psql "$RELATA_TEST_POSTGRES" -Xq -c "CREATE DATABASE $db" >/dev/null
url="$base/$db?sslmode=disable"
trap 'cleanup; psql "$RELATA_TEST_POSTGRES" -Xq -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# cpu PID: user+system CPU ticks of PID and its waited-for children.
cpu() { awk '{print $14+$15+$16+$17}' "/proc/$1/stat"; }
pgpid=$(psql "$RELATA_TEST_POSTGRES" -XAt -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
pgmaster=$(awk '{print $4}' "/proc/$pgpid/stat")
pgcpu() {
  local s=0 p
  for p in $pgmaster $(pgrep -P "$pgmaster"); do s=$((s + $(cpu "$p" 2>/dev/null || echo 0))); done
  echo $s
}

grpc=()
for i in $(seq "$nodes"); do
  g=$(free_port); h=$(free_port)
  "$bin" serve --datastore "$url" --grpc-addr "127.0.0.1:$g" --http-addr "127.0.0.1:$h" --ui=false --log-level warn \
    >"$work/node$i.log" 2>&1 &
  pids+=($!)
  grpc+=("127.0.0.1:$g")
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$h/healthz" >/dev/null 2>&1 && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/node$i.log" >&2; exit 1; }
    sleep 0.2
  done
done
more=$(IFS=,; echo "${grpc[*]:1}")

echo "loading through node 1 ..." >&2
"$bin" bench --endpoint "${grpc[0]}" --progress none --phases check-min --concurrency 1 --max-ops 1 \
  --warmup=false --caveat-share 0 "$@" >"$work/load.txt"
grep -E "load" "$work/load.txt" >&2 || true

declare -A before
for i in $(seq "$nodes"); do before[$i]=$(cpu "${pids[$((i-1))]}"); done
pg0=$(pgcpu)
t0=$(date +%s.%N)
set +e
"$bin" bench --endpoint "${grpc[0]}" ${more:+--more-endpoints "$more"} --skip-load --progress none \
  --phases check-min,mixed --concurrency 64 --duration 20s --caveat-share 0 "$@" &
benchpid=$!
# The bench's own CPU: sampled until it exits.
bcpu=0
while kill -0 $benchpid 2>/dev/null; do
  c=$(cpu $benchpid 2>/dev/null) && bcpu=$c
  sleep 0.5
done
wait $benchpid
rc=$?
set -e
wall=$(echo "$(date +%s.%N) - $t0" | bc)
hz=$(getconf CLK_TCK)
total=0
declare -A used
for i in $(seq "$nodes"); do used[node$i]=$(( $(cpu "${pids[$((i-1))]}") - ${before[$i]} )); done
used[postgres]=$(( $(pgcpu) - pg0 ))
used[bench]=$bcpu
for k in "${!used[@]}"; do total=$((total + used[$k])); done
echo
printf 'CPU during the measured phases (%d node(s), %.1f s wall, %d CPUs, load average %s):\n' "$nodes" "$wall" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
for k in $(printf '%s\n' "${!used[@]}" | sort); do
  awk -v k="$k" -v u="${used[$k]}" -v t="$total" -v hz="$hz" 'BEGIN { printf "  %-9s %8.2f s  %5.1f%%\n", k, u/hz, (t ? 100*u/t : 0) }'
done
exit $rc
