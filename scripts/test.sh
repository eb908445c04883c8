#!/usr/bin/env bash
# Build spectator-c and run its tests, one stage after another.
#
# Usage: scripts/test.sh [stage ...]
#
# Stages (all of them run by default, in this order):
#   build-test   fresh RelWithDebInfo build in $BUILD_DIR, then every ctest test except the
#                install test
#   install      the install test: install the build into a temporary prefix and build and run
#                programs against it with pkg-config and with find_package (tests/install/)
#
# Environment:
#   STAGES         stages to run, separated by spaces (default: all; arguments win)
#   BUILD_DIR      build directory of the build-test stage (default: build/ci); it is deleted and
#                  configured again on each run, so it must be a build directory or not exist
#   JOBS           parallel build jobs (default: nproc)
#   TEST_TIMEOUT   timeout in seconds of each test that does not set its own (default: 300)
#   CTEST_PARALLEL_LEVEL  tests run at once (ctest's own variable; default: 1)
#   SKIP_DEPS=1    do not run scripts/deps.sh first
#   CC             compiler (default: cmake's choice)
#
# Exits 0 when every stage passed, non-zero at the first stage that fails.
#
# Adding a stage: write a function stage_<name> (dashes become underscores), add <name> to
# ALL_STAGES, and describe it above.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ALL_STAGES="build-test install"
BUILD_DIR=${BUILD_DIR:-build/ci}
JOBS=${JOBS:-$(nproc)}
TEST_TIMEOUT=${TEST_TIMEOUT:-300}

if (($# > 0)); then
  STAGES="$*"
else
  STAGES=${STAGES:-$ALL_STAGES}
fi

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

log() { printf '%s\n' "$*"; }
die() {
  printf 'test.sh: %s\n' "$*" >&2
  exit 2
}

banner() {
  log ""
  log "=============================================================================="
  log "== $*"
  log "=============================================================================="
}

# Delete and recreate a build directory, refusing anything that does not look like one.
fresh_dir() {
  local dir=$1
  if [[ -e $dir ]]; then
    if [[ ! -f $dir/CMakeCache.txt ]] && [[ -n $(ls -A "$dir") ]]; then
      die "$dir exists and is not a CMake build directory; refusing to delete it"
    fi
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
}

# configure <dir> [cmake args...]: a fresh configure of the project in <dir>.
configure() {
  local dir=$1
  shift
  fresh_dir "$dir"
  cmake -S "$ROOT" -B "$dir" "$@"
}

build() {
  cmake --build "$1" --parallel "$JOBS"
}

# run_ctest <dir> [ctest args...]
run_ctest() {
  local dir=$1
  shift
  (cd "$dir" && ctest --output-on-failure --timeout "$TEST_TIMEOUT" "$@")
}

# ---------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------

# The normal build, with the tests built by default for a top-level project.
stage_build_test() {
  configure "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  build "$BUILD_DIR"
  run_ctest "$BUILD_DIR" --exclude-regex '^install$'
}

# The install test needs the build of build-test; build it when this stage runs alone.
stage_install() {
  if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
    configure "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  fi
  build "$BUILD_DIR"
  run_ctest "$BUILD_DIR" --tests-regex '^install$'
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

for stage in $STAGES; do
  declare -F "stage_${stage//-/_}" >/dev/null ||
    die "unknown stage '$stage' (stages: $ALL_STAGES)"
done

if [[ ${SKIP_DEPS:-0} != 1 ]]; then
  "$ROOT/scripts/deps.sh"
fi

start_all=$SECONDS
passed=()
current=""

summary() {
  local rc=$?
  local total=$((SECONDS - start_all))
  log ""
  if ((rc == 0)); then
    log "test.sh: all stages passed (${passed[*]}) in ${total}s"
  else
    log "test.sh: FAILED in stage '${current}' after ${total}s (passed: ${passed[*]:-none})" >&2
  fi
}
trap summary EXIT

for stage in $STAGES; do
  current=$stage
  banner "stage $stage"
  start=$SECONDS
  "stage_${stage//-/_}"
  log "== stage $stage passed in $((SECONDS - start))s"
  passed+=("$stage")
done
current=""
