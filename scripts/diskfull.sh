#!/usr/bin/env bash
# diskfull.sh: the disk-full scenario of issue 16 on a real 64 MiB tmpfs (needs root
# for mount). It checks that:
#   1. a server whose disk fills answers reads and /healthz, refuses writes with
#      STORAGE_FULL (HTTP 507), and /readyz says NOT_READY;
#   2. once space is freed, writes succeed again without a restart;
#   3. `relata serve` on a full disk exits 1 within 10 s with one clear line.
# Usage: sudo scripts/diskfull.sh      (exit 0 when every check passes)
set -euo pipefail
cd "$(dirname "$0")/.."

mnt=$(mktemp -d /tmp/relata-diskfull.XXXXXX)
bin=$(mktemp -d)/relata
pid=""
cleanup() {
	[[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	umount "$mnt" 2>/dev/null || true
	rmdir "$mnt" 2>/dev/null || true
	rm -rf "$(dirname "$bin")"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

go build -o "$bin" ./cmd/relata
schema=$(dirname "$bin")/schema.zed
printf 'definition user {}\ndefinition tenant {\n    relation viewer: user\n    permission view = viewer\n}\n' >"$schema"
mount -t tmpfs -o size=64m tmpfs "$mnt"
# Never fill anything but the tmpfs.
mountpoint -q "$mnt" || fail "$mnt is not a mount point"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=127.0.0.1:$(port)
grpc=127.0.0.1:$(port)

"$bin" serve --data-dir "$mnt/data" --http-addr "$http" --grpc-addr "$grpc" --min-free-space 8MiB --schema "$schema" \
	>"${TMPDIR:-/tmp}/relata-diskfull.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://$http/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://$http/readyz" >/dev/null || fail "server not ready"

write() { # write USER → HTTP status
	curl -s -o /dev/null -w '%{http_code}' -d '{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"tenant","id":"acme"},"relation":"viewer","subject":{"object":{"type":"user","id":"'"$1"'"}}}}]}' "http://$http/v1/tuples/write"
}
check() { # check USER → body
	curl -s -d '{"object":{"type":"tenant","id":"acme"},"permission":"view","subject":{"object":{"type":"user","id":"'"$1"'"}},"consistency":{"fullyConsistent":true}}' "http://$http/v1/check"
}
[[ $(write anne) == 200 ]] || fail "first write"

# Fill the disk to the brim.
mountpoint -q "$mnt" || fail "$mnt is not a mount point"
dd if=/dev/zero of="$mnt/filler" bs=1M 2>/dev/null || true
echo "filled: $(df -h --output=avail "$mnt" | tail -1) free"
code=$(write bob)
[[ $code == 507 ]] || fail "write on a full disk answered $code, want 507"
curl -s -d '{"updates":[{"operation":"TOUCH","tuple":{"object":{"type":"tenant","id":"acme"},"relation":"viewer","subject":{"object":{"type":"user","id":"bob"}}}}]}' "http://$http/v1/tuples/write" | grep -q STORAGE_FULL || fail "no STORAGE_FULL reason"
check anne | grep -q '"allowed":true' || fail "check on a full disk"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://$http/healthz") == 200 ]] || fail "/healthz on a full disk"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://$http/readyz") == 503 ]] || fail "/readyz should be 503 on a full disk"
kill -0 "$pid" || fail "server died"
echo "ok: full disk: writes 507 STORAGE_FULL, reads, /healthz 200, /readyz 503"

rm -f "$mnt/filler"
[[ $(write bob) == 200 ]] || fail "write after freeing space"
check bob | grep -q '"allowed":true' || fail "the write after freeing space is not visible"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://$http/readyz") == 200 ]] || fail "/readyz after freeing space"
echo "ok: space freed: writes succeed again without a restart"

kill "$pid"; wait "$pid" || true; pid=""

# Start on a full disk.
mountpoint -q "$mnt" || fail "$mnt is not a mount point"
dd if=/dev/zero of="$mnt/filler" bs=1M 2>/dev/null || true
start=$(date +%s)
set +e
out=$(timeout 20 "$bin" serve --data-dir "$mnt/data" --http-addr "127.0.0.1:$(port)" --grpc-addr "127.0.0.1:$(port)" 2>&1)
code=$?
set -e
took=$(( $(date +%s) - start ))
[[ $code == 1 ]] || fail "serve on a full disk exited $code, want 1: $out"
(( took <= 10 )) || fail "serve on a full disk took ${took}s"
echo "$out" | grep -q "no space left on $mnt/data: free space and restart" || fail "no clear line: $out"
echo "ok: serve on a full disk: exit 1 after ${took}s: $(echo "$out" | tail -1)"
rm -f "$mnt/filler"
echo PASS
