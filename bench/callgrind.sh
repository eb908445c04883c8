#!/usr/bin/env bash
# Instructions per call of each hot-path operation, counted by callgrind:
# stable on a noisy machine where nanoseconds are not.
#
#   bench/callgrind.sh [build-dir]      (default: build-bench, as run_all.sh)
#
# BENCH_PROG names another program with the same --list and --run (default
# bench_hotpath; bench_lines counts the udp output's recording calls, with
# CALLGRIND_CALLS=4000 so that both runs fit one sample ring).
#
# Each operation runs twice under callgrind, N and 2N calls; the difference of
# the two instruction totals divided by N is the cost of one call, loop
# included (the loop is the same 3-4 instructions for every row), start-up and
# set-up excluded.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build-bench}
prog=$build/bench/${BENCH_PROG:-bench_hotpath}
N=${CALLGRIND_CALLS:-100000}
command -v valgrind >/dev/null || { echo "valgrind not found: skipping callgrind counts"; exit 0; }
[ -x "$prog" ] || { echo "$prog not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

total() { # op calls -> instructions of the whole run
  valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$prog" --run "$1" "$2" \
    >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  awk '/^(summary|totals):/ { print $2; exit }' "$tmp/out"
}

echo
echo "## Instructions per call (callgrind)"
echo
echo "| operation | instructions/call |"
echo "|---|---:|"
while IFS= read -r op; do
  a=$(total "$op" "$N")
  b=$(total "$op" "$((2 * N))")
  awk -v op="$op" -v a="$a" -v b="$b" -v n="$N" 'BEGIN { printf "| %s | %.1f |\n", op, (b - a) / n }'
done < <("$prog" --list)
