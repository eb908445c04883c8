#!/usr/bin/env bash
# The aggregator's web page in a real headless browser (Debian's chromium):
# spectator-aggregator serves the page from any working directory, the real
# library publishes known values to it (page_publisher), and the page, as
# chromium renders it, shows each series with the exact values.
#
# Usage: tests/aggregator_page.sh <spectator-aggregator> <page_publisher>
#
# Without chromium the test is skipped (exit 77) with a message, except in CI
# (CI set), where it fails: scripts/deps.sh --test installs chromium.
set -euo pipefail
AGG=$(realpath "$1")
PUBLISHER=$(realpath "$2")

BROWSER=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null; then
    BROWSER=$b
    break
  fi
done
if [[ -z $BROWSER ]]; then
  echo "aggregator_page: chromium not found: the page was NOT tested" \
    "(Debian: apt-get install chromium, or scripts/deps.sh --test)" >&2
  [[ -n ${CI:-} ]] && exit 1
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/spectator-page.XXXXXX")
AGG_PID=""
cleanup() {
  if [[ -n $AGG_PID ]]; then
    kill "$AGG_PID" 2>/dev/null || true
    wait "$AGG_PID" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "aggregator_page FAILED: $*" >&2
  [[ -f $work/dom.html ]] && { echo "--- page as rendered:" >&2; cat "$work/dom.html" >&2; }
  exit 1
}

# From an empty directory: the page's files are compiled into the program. A
# step of an hour keeps both publishes in interval 1.
mkdir "$work/cwd"
(cd "$work/cwd" && exec "$AGG" --port 0 --port-file "$work/port" --step 3600 --duration 300 \
  >"$work/agg.log" 2>&1) &
AGG_PID=$!
for _ in $(seq 1 100); do
  [[ -s $work/port ]] && break
  sleep 0.1
done
[[ -s $work/port ]] || fail "the aggregator did not start: $(cat "$work/agg.log")"
PORT=$(cat "$work/port")
grep -qF "web page: http://127.0.0.1:$PORT/" "$work/agg.log" ||
  fail "the aggregator did not print its page's address: $(cat "$work/agg.log")"

# Each run returns after its final publish was answered.
"$PUBLISHER" "http://127.0.0.1:$PORT/api/v4/update"
"$PUBLISHER" "http://127.0.0.1:$PORT/api/v4/update" 2

# --virtual-time-budget: the page runs its scripts and polls (virtual time
# waits for pending fetches) before the DOM is dumped.
"$BROWSER" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/profile" \
  --virtual-time-budget=5000 --dump-dom "http://127.0.0.1:$PORT/" >"$work/dom.html" \
  2>"$work/browser.log" || fail "chromium failed: $(tail -n 20 "$work/browser.log")"

# section <id>: the card of one series, as rendered.
section() {
  ID=$1 perl -0777 -ne 'my $id = quotemeta($ENV{ID});
    print $1 if /(<section class="series" data-id="$id".*?<\/section>)/s' "$work/dom.html"
}
# expect <id> <fragment>: the card contains this exact HTML fragment.
expect() {
  local card
  card=$(section "$1")
  [[ -n $card ]] || fail "no card for $1"
  [[ $card == *"$2"* ]] || fail "the card of $1 lacks '$2': $card"
}

grep -q '<body data-ready="true">' "$work/dom.html" || fail "the page did not render data"
id='page.requests{statistic=count,status=200}'
expect "$id" '<h2 class="name">page.requests</h2>'
expect "$id" '<li>statistic=count</li><li>status=200</li>'
expect "$id" '<dd class="op">add</dd>'
expect "$id" '<dd class="count" data-value="2">2</dd>'
expect "$id" '<dd class="total" data-value="10">10</dd>'
expect "$id" '<dd class="last-interval" data-value="10">10</dd>'
expect "$id" 'data-points="1" data-values="1:10"'
expect 'page.queue{statistic=gauge}' '<dd class="op">max</dd>'
expect 'page.queue{statistic=gauge}' '<dd class="total" data-value="3">3</dd>'
expect 'page.latency{statistic=totalTime}' '<dd class="total" data-value="1.5">1.5</dd>'
expect 'page.latency{statistic=count}' '<dd class="total" data-value="1">1</dd>'
expect 'page.latency{statistic=max}' '<dd class="total" data-value="1.5">1.5</dd>'
expect 'page.latency{statistic=totalOfSquares}' '<dd class="total" data-value="2.25">2.25</dd>'
status=$(perl -0777 -ne 'print $1 if /<p id="status" class="status">([^<]*)</' "$work/dom.html")
[[ $status == *" 2 requests "* ]] || fail "the status line does not count 2 requests: '$status'"
echo "aggregator_page: chromium ($("$BROWSER" --version 2>/dev/null | head -n 1)) rendered" \
  "$(grep -o '<section class="series"' "$work/dom.html" | wc -l) series with the published values"
