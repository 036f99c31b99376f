#!/usr/bin/env bash
# genproto.sh regenerates the committed Go and OpenAPI code of proto/relata/v1 from the
# .proto files, offline: buf is run at a pinned version with `go run`, and the four
# protoc plugins are pinned by the `tool` directives of go.mod (`go tool protoc-gen-…`).
#
#   scripts/genproto.sh          regenerate
#   scripts/genproto.sh --check  regenerate into a temporary copy and fail if the
#                                committed files differ (what CI's freshness check does)
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=v1.75.0
buf() { go run "github.com/bufbuild/buf/cmd/buf@${BUF_VERSION}" "$@"; }

gen() {
  rm -f proto/relata/v1/*.pb.go proto/relata/v1/*.pb.gw.go proto/relata/v1/*.swagger.json
  buf lint
  buf generate --path proto/relata
  # Streams as the gateway sends them, security, and the routes beside the gateway.
  go run ./scripts/openapipatch proto/relata/v1/relata.swagger.json
}

if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/scripts"
  cp -r buf.yaml buf.gen.yaml go.mod go.sum proto "$tmp/"
  cp -r scripts/openapipatch "$tmp/scripts/"
  (cd "$tmp" && gen)
  if ! diff -r proto "$tmp/proto"; then
    echo "genproto: generated code is stale; run scripts/genproto.sh" >&2
    exit 1
  fi
  echo "genproto: generated code is up to date"
else
  gen
fi
