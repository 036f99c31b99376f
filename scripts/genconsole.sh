#!/usr/bin/env bash
# Builds the web console (console/web) into console/dist, which is committed and
# embedded in the binary. Reproducible offline once console/web/node_modules is
# installed from the committed lockfile (`npm ci`, run here when missing or stale):
# esbuild is pinned in go.mod as a tool (go tool esbuild), the npm dependencies by
# console/web/package-lock.json.
#
#   scripts/genconsole.sh           rebuild console/dist
#   scripts/genconsole.sh --check   fail if console/dist differs from a fresh build
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
[ "${1:-}" = "--check" ] && check=true

web=console/web
stamp="$web/node_modules/.relata-lockfile.sha256"
want=$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  command -v npm >/dev/null || { echo "genconsole: npm is needed to install $web/node_modules from the lockfile (Debian: apt-get install -y npm)" >&2; exit 1; }
  (cd "$web" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi

out=console/dist
if $check; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
rm -f "$out"/*

go tool esbuild "$web/src/main.js" --bundle --format=esm --target=es2022 --minify \
  --legal-comments=eof --charset=utf8 --log-level=warning --outfile="$out/app.js"
go tool esbuild "$web/src/style.css" --bundle --minify --charset=utf8 --log-level=warning --outfile="$out/app.css"
cp "$web/src/index.html" "$out/index.html"

if $check; then
  if ! diff -r "$out" console/dist >/dev/null; then
    echo "genconsole: console/dist is stale; run scripts/genconsole.sh and commit the result" >&2
    diff -rq "$out" console/dist >&2 || true
    exit 1
  fi
  echo "genconsole: console/dist is fresh"
fi
