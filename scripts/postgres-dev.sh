#!/usr/bin/env bash
# A private PostgreSQL for Relata's tests and for trying `relata serve --datastore`.
#
#   eval "$(scripts/postgres-dev.sh start)"   # starts it, exports RELATA_TEST_POSTGRES
#   go test ./tuples/pgstore/                 # the PostgreSQL tests now run
#   scripts/postgres-dev.sh stop              # stops it and removes its data
#
# start runs initdb in a new temporary directory, starts the server on a free
# loopback port (no TCP on other interfaces, no Unix socket outside that directory)
# and prints `export RELATA_TEST_POSTGRES=postgres://…`; the state (directory, URL)
# is kept in $RELATA_PG_STATE (default /tmp/relata-postgres-dev.env) for stop; export it
# before `eval "$(scripts/postgres-dev.sh start)"` (a VAR=… prefix on eval does not reach
# the command substitution).
# It finds the server binaries on PATH or in /usr/lib/postgresql/*/bin (Debian's
# `postgresql` package). Run as root, it runs the server as the `postgres` user.
set -euo pipefail

state=${RELATA_PG_STATE:-/tmp/relata-postgres-dev.env}

find_bin() {
  if command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ]; then echo "$d"; return; fi
  done
  echo "postgres-dev.sh: no initdb found: install PostgreSQL (Debian: apt-get install -y postgresql)" >&2
  exit 1
}

free_port() {
  # Ask the kernel for a free port, then release it for the server.
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null && return
  local p
  for _ in $(seq 50); do
    p=$(( (RANDOM % 20000) + 30000 ))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return; fi
  done
  echo "postgres-dev.sh: no free port found" >&2
  exit 1
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  if [ -f "$state" ]; then
    # shellcheck disable=SC1090
    . "$state"
    if [ -n "${RELATA_PG_DIR:-}" ] && [ -f "$RELATA_PG_DIR/data/postmaster.pid" ]; then
      echo "export RELATA_TEST_POSTGRES='$RELATA_TEST_POSTGRES'"
      return
    fi
  fi
  local bin dir port url
  bin=$(find_bin)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/relata-pg.XXXXXX")
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  port=$(free_port)
  as_pg "$bin/initdb" -D "$dir/data" -U relata --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    as_pg "$bin/initdb" -D "$dir/data" -U relata --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
  }
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=on -c synchronous_commit=on" \
    start >/dev/null || {
    cat "$dir/postgres.log" >&2
    exit 1
  }
  as_pg "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U relata -d postgres -c 'CREATE DATABASE relata' >/dev/null
  url="postgres://relata@127.0.0.1:$port/relata?sslmode=disable"
  printf 'RELATA_PG_DIR=%q\nRELATA_PG_BIN=%q\nRELATA_TEST_POSTGRES=%q\n' "$dir" "$bin" "$url" >"$state"
  echo "export RELATA_TEST_POSTGRES='$url'"
}

stop() {
  if [ ! -f "$state" ]; then
    echo "postgres-dev.sh: nothing to stop ($state not found)" >&2
    return 0
  fi
  # shellcheck disable=SC1090
  . "$state"
  if [ -f "$RELATA_PG_DIR/data/postmaster.pid" ]; then
    as_pg "$RELATA_PG_BIN/pg_ctl" -D "$RELATA_PG_DIR/data" -m fast -w -t 60 stop >/dev/null || true
  fi
  rm -rf "$RELATA_PG_DIR" "$state"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
  echo "usage: scripts/postgres-dev.sh start|stop" >&2
  exit 2
  ;;
esac
