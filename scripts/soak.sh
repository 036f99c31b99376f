#!/usr/bin/env bash
# soak.sh runs a real server under a mixed load and checks that it holds up:
#
#   scripts/soak.sh [DURATION] [SOAK FLAGS...]     DURATION defaults to 10m
#
# It builds `relata` and the load generator (cmd/soak), starts `relata serve` on a
# temporary data directory with gRPC and REST on free loopback ports, and runs the
# generator: 95% checks, 4% writes, 1% lookups from 256 workers, plus 20 Watch
# consumers. Every minute it prints the operations, errors, p99 latency and the
# server's RSS; at the end it verifies that every acknowledged write is present and
# that every watcher saw it. It exits 1 when any operation failed or a write is
# missing. Extra arguments go to the generator (`go run ./cmd/soak -h` lists them,
# e.g. --concurrency, --interval). The server's log is kept when the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-10m}
shift || true

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

"$tmp/relata" serve --data-dir "$tmp/data" --grpc-addr "127.0.0.1:$grpc" --http-addr "127.0.0.1:$http" \
  --log-level warn >"$tmp/server.log" 2>&1 &
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

"$tmp/soak" --endpoint "127.0.0.1:$grpc" --insecure --duration "$duration" --server-pid "$pid" "$@"
if grep -E '"level":"ERROR"|level=ERROR|panic' "$tmp/server.log" >/dev/null; then
  echo "soak: the server logged errors:" >&2
  grep -E '"level":"ERROR"|level=ERROR|panic' "$tmp/server.log" | head -20 >&2
  exit 1
fi
ok=true
