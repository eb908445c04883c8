#!/usr/bin/env bash
# See spectator-c work in under a minute:
#   1. install the build dependencies and libmicrohttpd (as root; otherwise print what to
#      install),
#   2. build the library, spectator-aggregator (a local Atlas aggregator) and the examples,
#   3. start the aggregator, which prints every datapoint it receives as a readable time
#      series (name{tags} op value, per interval) and graphs them on its web page,
#   4. run examples/demo, which records on every meter type for DEMO_SECONDS seconds and
#      publishes every SPECTATOR_FREQUENCY seconds,
#   5. keep the aggregator and its page up until you press Enter (or DEMO_KEEP seconds),
#      then stop it, and show what a snapshot looks like with examples/basic.
#
# Usage: scripts/demo.sh
#
# Environment:
#   BUILD_DIR            build directory (default: build/demo; reused between runs)
#   JOBS                 parallel build jobs (default: nproc)
#   DEMO_SECONDS         how long the demo application records (default: 15)
#   DEMO_KEEP            seconds to keep the aggregator up after the demo (default: until you
#                        press Enter when run in a terminal, 0 otherwise)
#   DEMO_PORT            the aggregator's port (default: 0, any free port)
#   SPECTATOR_FREQUENCY  publish interval in seconds (default here: 5)
#   SKIP_DEPS=1          do not run scripts/deps.sh first
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD_DIR=${BUILD_DIR:-build/demo}
JOBS=${JOBS:-$(nproc)}
DEMO_SECONDS=${DEMO_SECONDS:-15}
DEMO_PORT=${DEMO_PORT:-0}
export SPECTATOR_FREQUENCY=${SPECTATOR_FREQUENCY:-5}

step() { printf '\n==> %s\n' "$*"; }

step "1/5 build dependencies and libmicrohttpd (scripts/deps.sh)"
if [[ ${SKIP_DEPS:-0} != 1 ]]; then
  "$ROOT/scripts/deps.sh"
fi
echo "all installed"

step "2/5 build the library, spectator-aggregator and the examples in $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECTATOR_BUILD_EXAMPLES=ON \
  -DSPECTATOR_BUILD_TESTS=OFF -DSPECTATOR_BUILD_BENCH=OFF -DSPECTATOR_BUILD_AGGREGATOR=ON >/dev/null
cmake --build "$BUILD_DIR" --parallel "$JOBS" --target spectator_aggregator demo basic >/dev/null
echo "built"

AGG="$BUILD_DIR/tools/aggregator/spectator-aggregator"
PORT_FILE=$(mktemp)
rm -f "$PORT_FILE"
AGG_PID=""
cleanup() {
  if [[ -n $AGG_PID ]]; then
    kill "$AGG_PID" 2>/dev/null || true
    wait "$AGG_PID" 2>/dev/null || true
  fi
  rm -f "$PORT_FILE"
}
trap cleanup EXIT

step "3/5 start spectator-aggregator, printing what it receives"
"$AGG" --port "$DEMO_PORT" --print --port-file "$PORT_FILE" &
AGG_PID=$!
for _ in $(seq 1 100); do
  [[ -s $PORT_FILE ]] && break
  sleep 0.1
done
[[ -s $PORT_FILE ]] || { echo "the aggregator did not start" >&2; exit 1; }
PORT=$(cat "$PORT_FILE")
export SPECTATOR_URI="http://127.0.0.1:$PORT/api/v4/update"
cat <<EOT

    Open http://127.0.0.1:$PORT/ in a browser: a graph per series, updated live.
    (On another machine: ssh -L $PORT:127.0.0.1:$PORT <this host>, then open the same address.)
EOT

step "4/5 run examples/demo for ${DEMO_SECONDS}s, publishing every ${SPECTATOR_FREQUENCY}s to $SPECTATOR_URI"
"$BUILD_DIR/examples/demo" "$DEMO_SECONDS"

step "5/5 the aggregator keeps what it received: http://127.0.0.1:$PORT/"
if [[ -n ${DEMO_KEEP:-} ]]; then
  echo "keeping it up for ${DEMO_KEEP}s"
  sleep "$DEMO_KEEP"
elif [[ -t 0 ]]; then
  read -r -p "press Enter to stop the aggregator " _ || true
fi
cleanup
AGG_PID=""

step "what a snapshot holds (examples/basic, no network)"
env -u SPECTATOR_URI SPECTATOR_LOG_LEVEL=error "$BUILD_DIR/examples/basic"

cat <<EOT

Done. Next:
  - read examples/demo.c and examples/basic.c, and docs/meters.md for what each meter reports
  - C++: examples/cpp_server.cpp and include/spectator.hpp
  - run the aggregator yourself: $AGG --print (installed as spectator-aggregator)
  - run the tests: ./scripts/test.sh
  - pre-fork servers: examples/prefork.c and docs/fork.md
EOT
