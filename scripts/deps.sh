#!/usr/bin/env bash
# Install the Debian packages spectator-c needs to build, test and run its demo.
#
# Quiet and idempotent: when everything is installed it prints nothing and
# exits 0. As root it installs what is missing with apt-get; otherwise it prints
# the command to run and exits 1.
#
# Usage: scripts/deps.sh
set -euo pipefail

PACKAGES=(
  cmake
  gcc
  clang
  libclang-rt-14-dev
  make
  pkg-config
  libcurl4-openssl-dev
  libcjson-dev
  zlib1g-dev
  libcmocka-dev
  libmicrohttpd-dev
  valgrind
  openssl
)

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
  echo "deps.sh: missing build dependencies: ${missing[*]}" >&2
  echo "deps.sh: install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
