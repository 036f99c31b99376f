#!/usr/bin/env bash
# soak.sh runs a real server under a mixed load and checks that it holds up:
#
#   scripts/soak.sh [DURATION] [SOAK FLAGS...] [-- SERVE FLAGS...]
#
# DURATION defaults to 10m. The 10-minute run of BENCHMARKS.md is plain
# `scripts/soak.sh`; `scripts/soak.sh 4m -- --memory-limit 256MiB` runs 4 minutes
# against a server with a smaller memory budget.
#
# It builds `relata` and the load generator (cmd/soak), starts `relata serve` on a
# temporary data directory with gRPC and REST on free loopback ports, and runs the
# generator: 95% checks, 4% writes, 1% lookups from 256 workers, plus 20 Watch
# consumers. A write is one Write call that creates a tuple and, once the worker's
# last 32 created tuples are live (--churn-window), deletes its oldest in the same
# call, so the data set stays bounded (--churn=false: writes only add). Every minute it prints the operations, errors, p99 latency and the
# server's RSS, as a share of the server's --memory-limit (default 512MiB), with the
# parts of it the server's /metrics names (the Go runtime, the check cache, Pebble's
# block cache and memtables, the read cache, and the rest), and what the server did in
# that minute (CPU time per operation, cache hit ratios, Pebble reads, GC cycles,
# resources per lookup); at the end the RSS change from minute 2
# to the end and the peak against the budget. It verifies, fully consistent, that
# every acknowledged create not deleted since is present and every acknowledged
# delete's tuple is absent, and that every watcher saw every acknowledged change, and
# exits 1 when any operation failed or a tuple or change is not as acknowledged. Arguments before `--` go to the generator (`go run
# ./cmd/soak -h` lists them, e.g. --concurrency, --interval), those after it to
# `relata serve`. The server's log is kept when the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10m
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  duration=$1
  shift
fi
soak_args=()
serve_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  soak_args+=("$1")
  shift
done
if [ $# -gt 0 ]; then shift; fi # the --
serve_args=("$@")
# The budget the RSS is reported against: serve's --memory-limit, when given.
memory_limit=512MiB
for ((i = 0; i < ${#serve_args[@]}; i++)); do
  case "${serve_args[$i]}" in
  --memory-limit=*) memory_limit=${serve_args[$i]#--memory-limit=} ;;
  --memory-limit) memory_limit=${serve_args[$((i + 1))]:-$memory_limit} ;;
  esac
done

tmp=$(mktemp -d /tmp/relata-soak.XXXXXX)
pid=""
ok=false
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if $ok; then
    rm -rf "$tmp"
  else
    echo "soak: server log and data kept in $tmp" >&2
  fi
}
trap cleanup EXIT

echo "soak: building"
go build -o "$tmp/relata" ./cmd/relata
go build -o "$tmp/soak" ./cmd/soak

# free_port prints a loopback port nothing listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}
grpc=$(free_port)
http=$(free_port)
while [ "$http" = "$grpc" ]; do http=$(free_port); done
metrics=$(free_port)
while [ "$metrics" = "$grpc" ] || [ "$metrics" = "$http" ]; do metrics=$(free_port); done

"$tmp/relata" serve --data-dir "$tmp/data" --grpc-addr "127.0.0.1:$grpc" --http-addr "127.0.0.1:$http" \
  --metrics-addr "127.0.0.1:$metrics" --log-level warn ${serve_args[@]+"${serve_args[@]}"} >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  if curl -fsS "http://127.0.0.1:$http/healthz" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "soak: the server exited:" >&2
    cat "$tmp/server.log" >&2
    exit 1
  fi
  sleep 0.1 # waiting for the server to listen
done
echo "soak: server pid $pid, gRPC 127.0.0.1:$grpc, REST 127.0.0.1:$http, data $tmp/data"

"$tmp/soak" --endpoint "127.0.0.1:$grpc" --insecure --duration "$duration" --server-pid "$pid" \
  --metrics-url "http://127.0.0.1:$metrics/metrics" --memory-limit "$memory_limit" ${soak_args[@]+"${soak_args[@]}"}
if grep -E '"level":"ERROR"|level=ERROR|panic' "$tmp/server.log" >/dev/null; then
  echo "soak: the server logged errors:" >&2
  grep -E '"level":"ERROR"|level=ERROR|panic' "$tmp/server.log" | head -20 >&2
  exit 1
fi
ok=true
