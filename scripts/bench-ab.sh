#!/usr/bin/env bash
# bench-ab.sh: an A/B of the Check phases of `relata bench` between two commits, run
# interleaved (A, B, A, B, ...) so that a machine whose load drifts treats both alike.
#
#   scripts/bench-ab.sh [-n ROUNDS] [-o OUTDIR] COMMIT_A COMMIT_B [-- BENCH FLAGS...]
#
# Builds `relata` at each commit (git archive into a temporary directory, so the work
# tree is not touched), then runs ROUNDS times (default 3) each binary's own
#   relata bench --local --progress none --json --concurrency 64 \
#       --phases check-min-c64,check-full-c64 [BENCH FLAGS]
# (a fresh in-process server and the default data set each run: 1,002,569 tuples; the
# bench client is the same code at both commits when bench/ and cmd/cli/bench.go did not
# change between them). Each run's JSON and the load average before it go to OUTDIR
# (default a new temporary directory); the end prints one line per run and the
# per-binary medians of ops/s and of ops per CPU second of the bench process (server and
# client together: on a shared, loaded machine the wall-clock rate mostly measures the
# CPU share the run got, the rate per CPU second much less). warmup_done is the number
# of CheckBulk calls the warm-up finished: below pool/100 it did not cover the pool and
# the check-min phase ran partly cold (pass a smaller --pool or a longer --duration).
#
# Example (issue 13, caveats: the commit before the caveat engine and the head):
#   scripts/bench-ab.sh 26a0c12 HEAD
set -euo pipefail

rounds=3
out=""
while getopts "n:o:" opt; do
	case $opt in
	n) rounds=$OPTARG ;;
	o) out=$OPTARG ;;
	*) echo "usage: $0 [-n ROUNDS] [-o OUTDIR] COMMIT_A COMMIT_B [-- BENCH FLAGS...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -lt 2 ]; then
	echo "usage: $0 [-n ROUNDS] [-o OUTDIR] COMMIT_A COMMIT_B [-- BENCH FLAGS...]" >&2
	exit 2
fi
a=$1 b=$2
shift 2
[ "${1:-}" = "--" ] && shift
command -v jq >/dev/null || { echo "bench-ab.sh: needs jq" >&2; exit 2; }

repo=$(git rev-parse --show-toplevel)
out=${out:-$(mktemp -d "${TMPDIR:-/tmp}/relata-ab.XXXXXX")}
mkdir -p "$out"
build() { # build COMMIT NAME
	local src
	src=$(mktemp -d "${TMPDIR:-/tmp}/relata-ab-src.XXXXXX")
	git -C "$repo" archive "$1" | tar -x -C "$src"
	(cd "$src" && go build -buildvcs=false -o "$out/relata-$2" ./cmd/relata)
	rm -rf "$src"
}
ra=$(git -C "$repo" rev-parse --short "$a")
rb=$(git -C "$repo" rev-parse --short "$b")
echo "bench-ab: building A=$ra and B=$rb into $out" >&2
build "$a" A
build "$b" B

for i in $(seq 1 "$rounds"); do
	for side in A B; do
		f="$out/run$i-$side.json"
		load=$(cut -d' ' -f1-3 /proc/loadavg)
		echo "bench-ab: round $i $side (load $load) ..." >&2
		start=$(date -u +%H:%M:%S)
		"$out/relata-$side" bench --local --progress none --json --concurrency 64 \
			--phases check-min-c64,check-full-c64 "$@" >"$f"
		jq -c --arg side "$side" --arg round "$i" --arg load "$load" --arg start "$start" \
			'{round: $round, side: $side, start: $start, load: $load, mismatches: .mismatches,
			  warmup_done: ([.phases[] | select(.name | startswith("warmup-bulk")) | .ops] | first),
			  phases: [.phases[] | select(.name | startswith("check-")) | {name, ops_per_sec: (.ops_per_sec | floor),
			    p99_ms: ((.latency.p99_ns // 0) / 1e6 | floor), cpu_s: ((.server_cpu_ns // 0) / 1e9),
			    ops_per_cpu_s: (if (.server_cpu_ns // 0) > 0 then (.ops / (.server_cpu_ns / 1e9) | floor) else null end)}]}' \
			"$f" | tee -a "$out/runs.jsonl"
	done
done
echo "bench-ab: A=$ra B=$rb, medians over $rounds rounds (ops/s; ops per CPU second of the bench process, server and client):"
jq -s -r 'group_by(.side)[] | .[0].side as $s |
	[.[].phases[]] | group_by(.name)[] |
	"\($s) \(.[0].name) \([.[].ops_per_sec] | sort | .[(length/2|floor)]) ops/s, \([.[].ops_per_cpu_s] | sort | .[(length/2|floor)]) ops/CPU-s"' "$out/runs.jsonl"
echo "bench-ab: results in $out"
