#!/usr/bin/env bash
# The ABI check: is libspectator.so.0 of a build compatible with release 0.1.0?
#
# Usage: tests/abi/check.sh <build-dir> [--self-test]
#
# 1. abidiff compares the build's library (its DWARF, types of include/) with
#    the ABI of 0.1.0 stored in tests/abi/0.1.0/libspectator.abi (written by
#    tests/abi/make-baseline.sh). Added functions pass. A removed function, a
#    changed signature or a changed layout of a public type fails, except
#    what tests/abi/abi.suppr allows, each entry with its reason (members
#    appended at the end of spectator_config_t).
# 2. Every symbol 0.1.0 exported (tests/abi/0.1.0/symbols.txt) is exported
#    with version SPECTATOR_0.1, and nothing else is.
# 3. --self-test: proves that step 1 can fail. It builds the library again
#    from a copy of the sources changed three ways, and expects: a member
#    appended to spectator_config_t passes; a member inserted in its middle
#    fails; a removed function fails.
#
# Needs abidiff and abidw (Debian: abigail-tools), objdump, and for the
# self-test cmake and a C compiler. Exits 0 when compatible, 1 when not, 2
# when a tool is missing or the build directory has no library.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE_DIR=$ROOT/tests/abi/0.1.0
BASELINE=$BASE_DIR/libspectator.abi
SUPPR=$ROOT/tests/abi/abi.suppr

die() {
  printf 'abi check: %s\n' "$*" >&2
  exit 2
}

(($# >= 1)) || die "usage: tests/abi/check.sh <build-dir> [--self-test]"
BUILD=$1
SELF_TEST=${2:-}
for tool in abidiff objdump; do
  command -v "$tool" >/dev/null || die "$tool is not installed (Debian: abigail-tools, binutils; scripts/deps.sh --test installs them)"
done
LIB=$BUILD/libspectator.so.0
[[ -e $LIB ]] || die "$LIB not found: build the library first"

# compare <library> <its include dir>: abidiff's report on stdout, its status
# returned (0: compatible; any bit set: error, usage or an ABI change).
compare() {
  local rc=0
  abidiff --no-added-syms --suppressions "$SUPPR" --headers-dir1 "$BASE_DIR" --headers-dir2 "$2" \
    "$BASELINE" "$1" || rc=$?
  return "$rc"
}

failed=0

echo "-- abidiff: release 0.1.0 against $LIB"
if ! compare "$LIB" "$ROOT/include"; then
  echo "abi check: INCOMPATIBLE with 0.1.0 (abidiff's report above)" >&2
  failed=1
fi

echo "-- symbol versions"
# "spectator_x SPECTATOR_0.1" for every exported function.
exported=$(objdump -T "$LIB" | awk '$2 == "g" && $4 == ".text" { print $NF, $(NF-1) }' | sort)
missing=$(comm -23 "$BASE_DIR/symbols.txt" <(awk '$2 == "SPECTATOR_0.1" { print $1 }' <<<"$exported"))
extra=$(comm -13 "$BASE_DIR/symbols.txt" <(awk '$2 == "SPECTATOR_0.1" { print $1 }' <<<"$exported"))
if [[ -n $missing ]]; then
  echo "abi check: not exported as SPECTATOR_0.1: $missing" >&2
  failed=1
fi
if [[ -n $extra ]]; then
  echo "abi check: SPECTATOR_0.1 must list only what 0.1.0 exported; also has: $extra" >&2
  failed=1
fi
if grep -v '^spectator_' <<<"$exported" | grep -q .; then
  echo "abi check: exported symbols outside spectator_*: $(grep -v '^spectator_' <<<"$exported")" >&2
  failed=1
fi
echo "$(wc -l <"$BASE_DIR/symbols.txt") symbols of 0.1.0 as SPECTATOR_0.1;" \
  "$(awk '$2 != "SPECTATOR_0.1"' <<<"$exported" | wc -l) newer ones:" \
  "$(awk '$2 != "SPECTATOR_0.1" { printf "%s@%s ", $1, $2 }' <<<"$exported")"

((failed == 0)) || exit 1
echo "abi check: compatible with 0.1.0"

[[ $SELF_TEST == --self-test ]] || exit 0

# ---------------------------------------------------------------------------
# Self-test: the check fails on breaks and passes an append.
# ---------------------------------------------------------------------------
echo "-- self-test: the check on three changed copies of the sources"
work=$(mktemp -d "${TMPDIR:-/tmp}/spectator-abi-self.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$ROOT/CMakeLists.txt" "$ROOT/cmake" "$ROOT/include" "$ROOT/src" "$work/"
cp "$work/include/spectator.h" "$work/spectator.h.orig"
cp "$work/src/spectator.map" "$work/spectator.map.orig"
cmake -S "$work" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECTATOR_BUILD_TESTS=OFF \
  -DSPECTATOR_BUILD_AGGREGATOR=OFF \
  -DSPECTATOR_BUILD_EXAMPLES=OFF -DSPECTATOR_BUILD_BENCH=OFF >/dev/null

# variant <name> <expected: pass|fail> <sed script for the header> [<function to remove>]
variant() {
  local name=$1 expect=$2 header_sed=$3 remove=${4:-}
  cp "$work/spectator.h.orig" "$work/include/spectator.h"
  cp "$work/spectator.map.orig" "$work/src/spectator.map"
  sed -i "$header_sed" "$work/include/spectator.h"
  if [[ -z $remove ]] && cmp -s "$work/spectator.h.orig" "$work/include/spectator.h"; then
    die "self-test '$name': the change did not apply to spectator.h"
  fi
  if [[ -n $remove ]]; then
    # Gone from the library: unlisted, and no longer a global definition.
    sed -i "/^    $remove;\$/d" "$work/src/spectator.map"
    local file
    file=$(grep -rlE "^[a-z0-9_ *]*\\b$remove\\(" "$work/src") || die "self-test '$name': no definition of $remove"
    sed -i -E "s/^([a-z0-9_ *]*)\\b$remove\\(/static \\1${remove}_gone(/" $file
  fi
  cmake --build "$work/build" --target spectator --parallel "${JOBS:-$(nproc)}" >"$work/build.log" 2>&1 ||
    {
      cat "$work/build.log"
      die "self-test '$name': the changed library did not build"
    }
  local got=pass
  compare "$work/build/libspectator.so.0" "$work/include" >"$work/$name.txt" 2>&1 || got=fail
  if [[ $got != "$expect" ]]; then
    cat "$work/$name.txt"
    echo "abi check: self-test '$name': expected the check to $expect, it did $got" >&2
    exit 1
  fi
  [[ ${ABI_CHECK_VERBOSE:-0} == 1 ]] && cat "$work/$name.txt"
  echo "self-test '$name': the check does $got, as it must"
}

variant appended-config-member pass \
  's|^  /\* Members added after 0.1.0 go here, at the end, only. \*/$|  int abi_check_appended;|'
variant inserted-config-member fail \
  's|^  const char \*uri;   |  int abi_check_inserted;\n  const char *uri;   |'
variant removed-function fail '' spectator_timer_count
echo "abi check: self-test passed"
