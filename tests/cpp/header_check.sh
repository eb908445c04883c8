#!/usr/bin/env bash
# spectator.h and spectator.hpp compile as C++11, 14, 17 and 20 with g++ and
# clang++ under -pedantic -Werror and strict warnings (header_check.cpp). Not
# -Wshadow: g++ says that spectator_counter() "hides the constructor" of struct
# spectator_counter, names that the C API fixed.
#
# Usage: tests/cpp/header_check.sh <include dir>
#
# A missing clang++ is reported and the test is skipped (exit 77), except in
# CI (CI set), where it fails: scripts/deps.sh installs clang.
set -euo pipefail
INCLUDE=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FLAGS=(-pedantic -Werror -Wall -Wextra -Wold-style-cast -Wzero-as-null-pointer-constant
  -Wconversion -Wsign-conversion -Wundef)
out=$(mktemp -d "${TMPDIR:-/tmp}/spectator-hc.XXXXXX")
trap 'rm -rf "$out"' EXIT

missing=()
checked=0
for cxx in g++ clang++; do
  if ! command -v "$cxx" >/dev/null; then
    missing+=("$cxx")
    continue
  fi
  for std in 11 14 17 20; do
    if ! "$cxx" -std=c++$std "${FLAGS[@]}" -I"$INCLUDE" -c "$HERE/header_check.cpp" \
      -o "$out/hc.o"; then
      echo "header_check: FAILED with $cxx -std=c++$std" >&2
      exit 1
    fi
    echo "$cxx -std=c++$std: ok"
    checked=$((checked + 1))
  done
done
if ((${#missing[@]} > 0)); then
  echo "header_check: ${missing[*]} not found: the headers were not checked with it" \
    "(scripts/deps.sh --test installs clang)" >&2
  [[ -z ${CI:-} ]] || exit 1
  ((checked > 0)) || exit 1
  exit 77
fi
