#!/usr/bin/env bash
# bench-bulk.sh measures `relata import` and `relata export` of N generated tuples
# (default 1,000,000) end to end against a fresh `relata serve` on an empty on-disk
# store, and reports the server's peak resident memory (VmHWM) during the import.
#
#   scripts/bench-bulk.sh [N]
#
# The tuples are the ones BenchmarkImport generates (cmd/cli/bulk_bench_test.go): a
# quarter each of flow grants to users, flow denials to role usersets, role
# memberships and wildcard grants, all distinct.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-1000000}
GRPC=127.0.0.1:${RELATA_BENCH_PORT:-50199}
tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/relata" ./cmd/relata
awk -v n="$N" 'BEGIN {
  for (i = 0; i < n; i++) {
    m = i % 4
    if (m == 0) printf "flow:flow-%d#granted@user:user-%d\n", i, i % 100003
    else if (m == 1) printf "flow:flow-%d#denied@role:role-%d#member\n", i - 1, i % 1009
    else if (m == 2) printf "role:role-%d#member@user:user-%d\n", i % 1009, i
    else printf "flow:flow-%d#granted@user:*\n", i - 3
  }
}' > "$tmp/tuples.txt"
cat > "$tmp/schema.zed" <<'EOF'
definition user {}
definition role {
    relation member: user | role#member
}
definition flow {
    relation granted: user | role#member | user:*
    relation denied: user | role#member
    permission execute = granted - denied
}
EOF

"$tmp/relata" serve --data-dir "$tmp/data" --grpc-addr "$GRPC" --http-addr 127.0.0.1:0 \
  --schema "$tmp/schema.zed" --log-level warn &
pid=$!
for _ in $(seq 100); do
  "$tmp/relata" schema read --endpoint "$GRPC" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "import of $N tuples:"
"$tmp/relata" import --endpoint "$GRPC" --progress none "$tmp/tuples.txt"
echo "server peak RSS during import: $(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$pid/status")"

sleep 2 # let the flush after the import finish before timing the export
start=$(date +%s.%N)
count=$("$tmp/relata" export --endpoint "$GRPC" 2>"$tmp/export.err" | wc -l)
end=$(date +%s.%N)
cat "$tmp/export.err"
awk -v n="$count" -v s="$start" -v e="$end" 'BEGIN {
  printf "export: %d tuples in %.2f s (%.0f tuples/s)\n", n, e - s, n / (e - s)
}'
echo "server peak RSS overall: $(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$pid/status")"
