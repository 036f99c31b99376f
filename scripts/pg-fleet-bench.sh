#!/usr/bin/env bash
# Relata nodes over one PostgreSQL database, driven by one bench, with the CPU each
# process used.
#
#   scripts/pg-fleet-bench.sh [NODES] [-- BENCH FLAGS...]
#
# NODES (default 2) `relata serve --datastore` processes share a new database on the
# PostgreSQL of $RELATA_TEST_POSTGRES (start one with scripts/postgres-dev.sh). The
# data set is loaded through the first node. Then, unmeasured, the bench's warm-up (one
# CheckBulk pass over the check pool) runs through each node in turn; then each phase of
# $PHASES (default check-min,mixed: Check at c64 and the mixed phase at 1% writes, 20 s
# each) runs as its own `relata bench --skip-load --warmup=false --more-endpoints …`,
# measured alone. Flags after -- are added to every bench's (e.g. -- --tenants 10
# --users 7500 --flows 10000 --pool 20000). For each phase it prints the bench's table,
# the CPU seconds of each node, of PostgreSQL (the postmaster and its children, exited
# backends included) and of the bench, with each process's share of the total, each
# node's Checks and store queries (relata_grpc_requests_total,
# relata_store_queries_total), and the Checks per CPU second of the nodes and
# PostgreSQL together. Every answer is checked against the ground truth, as in `relata
# bench`; the exit code is 1 if any bench failed.
#
# WARM=1 also runs a 20 s check-min phase, unmeasured, after the warm-up: a node that
# did not serve the load starts with empty caches (see BENCHMARKS.md).
# DB=NAME reuses a database of that PostgreSQL that holds the data set already (it is
# neither loaded nor dropped: load it once with a first run and KEEP=1, which keeps the
# new database and prints its name). SERVE_FLAGS are added to every node's `relata
# serve` (e.g. the measurement-only --measure-no-cross-node-tracking, with one node).
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

base=${RELATA_TEST_POSTGRES%%\?*}
base=${base%/*}
load=1
if [ -n "${DB:-}" ]; then
  db=$DB
  load=0
else
  db=relata_fleet_$$
  psql "$RELATA_TEST_POSTGRES" -Xq -c "CREATE DATABASE $db" >/dev/null
  if [ "${KEEP:-0}" = 1 ]; then
    echo "database $db (kept: DB=$db reuses it)" >&2
  else
    trap 'cleanup; psql "$RELATA_TEST_POSTGRES" -Xq -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
  fi
fi
url="$base/$db?sslmode=disable"

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
http=()
for i in $(seq "$nodes"); do
  g=$(free_port); h=$(free_port)
  # shellcheck disable=SC2086 # SERVE_FLAGS is a list of flags
  "$bin" serve --datastore "$url" --grpc-addr "127.0.0.1:$g" --http-addr "127.0.0.1:$h" --ui=false --log-level warn \
    ${SERVE_FLAGS:-} >"$work/node$i.log" 2>&1 &
  pids+=($!)
  grpc+=("127.0.0.1:$g")
  http+=("127.0.0.1:$h")
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$h/healthz" >/dev/null 2>&1 && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/node$i.log" >&2; exit 1; }
    sleep 0.2
  done
done
more=$(IFS=,; echo "${grpc[*]:1}")

if [ "$load" = 1 ]; then
  echo "loading through node 1 ..." >&2
  "$bin" bench --endpoint "${grpc[0]}" --progress none --phases check-min --concurrency 1 --max-ops 1 \
    --warmup=false --caveat-share 0 "$@" >"$work/load.txt"
  grep -E "load" "$work/load.txt" >&2 || true
fi

# The warm-up: the check pool once with CheckBulk through each node in turn (and one
# check-min op), so that every node's caches hold the whole pool, as a node of a fleet
# that serves every kind of check would in its steady state.
for i in $(seq "$nodes"); do
  echo "warm-up of node $i ..." >&2
  "$bin" bench --endpoint "${grpc[$((i-1))]}" --skip-load --progress none \
    --phases check-min --concurrency 64 --max-ops 1 --caveat-share 0 "$@" >"$work/warmup$i.txt" || true
  grep -E "warmup" "$work/warmup$i.txt" >&2 || true
done
# With WARM=1, an unmeasured check-min run too. (Not the mixed phase: its writes are
# undone at its end, but a minimize_latency answer may still be read at a revision
# before the undo, which the next bench's ground truth does not know.)
if [ "${WARM:-0}" = 1 ]; then
  echo "warm-up run ..." >&2
  "$bin" bench --endpoint "${grpc[0]}" ${more:+--more-endpoints "$more"} --skip-load --progress none \
    --phases check-min --concurrency 64 --duration 20s --warmup=false --caveat-share 0 "$@" >"$work/warm.txt" || true
fi

# counts HTTP: store queries and answered Checks of the node at HTTP, from /metrics.
counts() {
  curl -s "http://$1/metrics" | awk '
    /^relata_store_queries_total/ { q += $2 }
    /^relata_grpc_requests_total/ && /PermissionService\/Check"/ && /code="OK"/ { c += $2 }
    END { printf "%d %d\n", q, c }'
}
hz=$(getconf CLK_TCK)
status=0
IFS=, read -r -a phases <<<"${PHASES:-check-min,mixed}"
for phase in "${phases[@]}"; do
  declare -A before q0 used
  for i in $(seq "$nodes"); do
    before[$i]=$(cpu "${pids[$((i-1))]}")
    q0[$i]=$(counts "${http[$((i-1))]}")
  done
  pg0=$(pgcpu)
  t0=$(date +%s.%N)
  set +e
  "$bin" bench --endpoint "${grpc[0]}" ${more:+--more-endpoints "$more"} --skip-load --progress none \
    --phases "$phase" --concurrency 64 --duration 20s --warmup=false --caveat-share 0 "$@" &
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
  [ $rc = 0 ] || status=1
  wall=$(echo "$(date +%s.%N) - $t0" | bc)
  total=0
  checks=0
  for i in $(seq "$nodes"); do used[node$i]=$(( $(cpu "${pids[$((i-1))]}") - ${before[$i]} )); done
  used[postgres]=$(( $(pgcpu) - pg0 ))
  used[bench]=$bcpu
  for k in "${!used[@]}"; do total=$((total + ${used[$k]})); done
  echo
  printf 'CPU during %s (%d node(s), %.1f s wall, %d CPUs, load average %s):\n' "$phase" "$nodes" "$wall" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
  for i in $(seq "$nodes"); do
    read -r qa ca <<<"${q0[$i]}"
    read -r qb cb <<<"$(counts "${http[$((i-1))]}")"
    checks=$((checks + cb - ca))
    awk -v i="$i" -v q=$((qb - qa)) -v c=$((cb - ca)) 'BEGIN { printf "  node%d: %d Checks, %d store queries (%.2f a Check)\n", i, c, q, (c ? q/c : 0) }'
  done
  for k in $(printf '%s\n' "${!used[@]}" | sort); do
    awk -v k="$k" -v u="${used[$k]}" -v t="$total" -v hz="$hz" 'BEGIN { printf "  %-9s %8.2f s  %5.1f%%\n", k, u/hz, (t ? 100*u/t : 0) }'
  done
  served=$((total - ${used[bench]}))
  awk -v c="$checks" -v u="$served" -v hz="$hz" 'BEGIN { printf "  Checks per CPU second of the nodes and PostgreSQL: %.0f\n", (u ? c*hz/u : 0) }'
  unset before q0 used
done
exit $status
