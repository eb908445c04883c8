#!/usr/bin/env bash
# Build the benchmarks in place (build-bench/, RelWithDebInfo = -O2 -g, the
# project's flags) and print every table: bench/run_all.sh [build-dir]
#
# Knobs (environment): BENCH_ROUNDS (rounds per figure), BENCH_SCALE
# (iteration counts; 0.2 for a quick look), BENCH_NO_CALLGRIND=1 to skip the
# callgrind counts. The whole run takes about 2 minutes on 2 vCPUs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${1:-$src/build-bench}

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECTATOR_BUILD_BENCH=ON \
  -DSPECTATOR_BUILD_TESTS=OFF -DSPECTATOR_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_hotpath bench_contention bench_lookup \
  bench_publish bench_memory bench_collisions bench_startup bench_lines >/dev/null

b=$build/bench
echo "# spectator-c benchmarks"
echo
echo "$(uname -srm); $(nproc) CPUs: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo);" \
  "$(${CC:-cc} --version | head -1); $(date -u +%Y-%m-%d)"
"$b/bench_hotpath"
[ "${BENCH_NO_CALLGRIND:-0}" = 1 ] || "$here/callgrind.sh" "$build"
"$b/bench_contention"
"$b/bench_lookup"
"$b/bench_publish"
"$b/bench_memory"
"$b/bench_lines"
[ "${BENCH_NO_CALLGRIND:-0}" = 1 ] || BENCH_PROG=bench_lines CALLGRIND_CALLS=4000 "$here/callgrind.sh" "$build"
"$b/bench_collisions"
"$b/bench_startup" "$b"
