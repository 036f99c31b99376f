#!/usr/bin/env bash
# stress-tests.sh: the whole test suite under the race detector, three times, with
# GOMAXPROCS 1 and 2, beside two CPU hogs, to shake out tests that depend on timing
# (issue 16). Usage: scripts/stress-tests.sh [PACKAGES...]   (default ./...)
# Exit status is go test's.
set -uo pipefail
cd "$(dirname "$0")/.."
hogs=()
for _ in 1 2; do
	( while :; do :; done ) &
	hogs+=($!)
done
trap 'kill "${hogs[@]}" 2>/dev/null' EXIT
pkgs=("$@")
[[ ${#pkgs[@]} -eq 0 ]] && pkgs=(./...)
go test -race -count=3 -cpu 1,2 -timeout 60m "${pkgs[@]}"
