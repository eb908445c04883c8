#!/usr/bin/env bash
# Regenerates tests/abi/0.1.0/libspectator.abi, the ABI of release 0.1.0 that
# tests/abi/check.sh compares builds against. Needs the git history (the check
# itself does not).
#
# The baseline is release 0.1.0's sources (commit eac4b49) linked with one
# symbol version node, SPECTATOR_0.1, listing what 0.1.0 exported
# (tests/abi/0.1.0/symbols.txt), as src/spectator.map does since. 0.1.0 itself
# shipped without symbol versions; abidiff does not compare the types of a
# function whose symbol gained a version, so an unversioned baseline would hide
# every layout change. Programs built against the unversioned 0.1.0 library
# still bind to these symbols: the config_abi_0_1 test runs one.
#
# Usage: tests/abi/make-baseline.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RELEASE=eac4b49
OUT=$ROOT/tests/abi/0.1.0/libspectator.abi
work=$(mktemp -d "${TMPDIR:-/tmp}/spectator-abi-base.XXXXXX")
trap 'rm -rf "$work"' EXIT

git -C "$ROOT" archive "$RELEASE" | tar -x -C "$work"
{
  echo 'SPECTATOR_0.1 {'
  echo '  global:'
  sed 's/^/    /; s/$/;/' "$ROOT/tests/abi/0.1.0/symbols.txt"
  echo '  local:'
  echo '    *;'
  echo '};'
} >"$work/src/spectator.map"
cmake -S "$work" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECTATOR_BUILD_TESTS=OFF \
  -DSPECTATOR_BUILD_AGGREGATOR=OFF \
  -DSPECTATOR_BUILD_EXAMPLES=OFF -DSPECTATOR_BUILD_BENCH=OFF >/dev/null
cmake --build "$work/build" --target spectator --parallel "$(nproc)" >/dev/null
abidw --headers-dir "$work/include" --drop-private-types --no-corpus-path --no-comp-dir-path \
  --short-locs --type-id-style hash --out-file "$OUT" "$work/build/libspectator.so.0"
echo "wrote $OUT"
