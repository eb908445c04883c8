#!/usr/bin/env bash
# Install the Debian packages spectator-c needs.
#
# Usage: scripts/deps.sh          what the build and the demo need: the library's build
#                                 dependencies and libmicrohttpd (spectator-aggregator)
#        scripts/deps.sh --test   that, plus what the test suite needs (scripts/test.sh)
#        scripts/deps.sh --list [--test]   print the packages and exit
#
# Quiet and idempotent: when everything is installed it prints nothing and
# exits 0. As root it installs what is missing with apt-get; otherwise it prints
# the command to run and exits 1.
set -euo pipefail

# The library: a C11 compiler, CMake, and the headers of libcurl, cJSON and zlib.
BUILD_PACKAGES=(
  cmake
  gcc
  make
  pkg-config
  libcurl4-openssl-dev
  libcjson-dev
  zlib1g-dev
)
# spectator-aggregator, the local aggregator with a web page (the demo uses it).
AGGREGATOR_PACKAGES=(
  libmicrohttpd-dev
)
# The test suite: cmocka, a C++ compiler (the C++ tests), clang and its runtime
# (the fuzz stage, the clang++ header check), valgrind, openssl (the local https
# endpoint), abigail-tools (the ABI check), chromium (the aggregator page's test),
# locales (a German locale's sources: numbers must keep their decimal point).
TEST_PACKAGES=(
  libcmocka-dev
  g++
  clang
  libclang-rt-14-dev
  valgrind
  openssl
  abigail-tools
  chromium
  locales
)

PACKAGES=("${BUILD_PACKAGES[@]}" "${AGGREGATOR_PACKAGES[@]}")
list=0
for arg in "$@"; do
  case $arg in
  --test) PACKAGES+=("${TEST_PACKAGES[@]}") ;;
  --list) list=1 ;;
  *)
    echo "usage: scripts/deps.sh [--test] [--list]" >&2
    exit 2
    ;;
  esac
done
if ((list)); then
  echo "${PACKAGES[*]}"
  exit 0
fi

# True when the package is installed (not merely known, or removed with its
# configuration left behind).
installed() {
  local status
  status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
  [[ $status == installed ]]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps.sh: dpkg-query not found; this script supports Debian and derivatives only." >&2
  echo "deps.sh: install these packages (or their equivalents) by hand: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "deps.sh: missing packages: ${missing[*]}" >&2
  echo "deps.sh: install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
