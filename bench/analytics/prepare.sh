#!/usr/bin/env bash
# Generates an event data set with bench/kit/gen_events.py and writes DuckDB's exact answers
# next to it, for the liftoff-analytics parity test:
#
#   bench/analytics/prepare.sh small target/analytics-small
#   LIFTOFF_TEST_ANALYTICS_DATA=target/analytics-small cargo test -p liftoff-analytics --test duckdb_parity
#
# SIZE: small (200k events, 5k users, 30 days: a few seconds), full (the 10M default set),
# or EVENTS:USERS (30 days). Reuses OUTDIR when it already holds the same size.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -eq 2 ] || { echo "usage: $0 small|full|EVENTS:USERS OUTDIR" >&2; exit 2; }
case "$1" in
  small) events=200000 users=5000 ;;
  full) events=10000000 users=200000 ;;
  *:*) events="${1%%:*}" users="${1##*:}" ;;
  *) echo "usage: $0 small|full|EVENTS:USERS OUTDIR" >&2; exit 2 ;;
esac
out="$2"
source "$here/venv.sh"
stamp="$out/.size"
if [ -f "$out/events.ndjson.gz" ] && [ -f "$out/events.parquet" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$events:$users" ]; then
  echo "== reusing $out ($events events, $users users)"
else
  mkdir -p "$out"
  "$PY" "$BENCH_KIT/gen_events.py" --events "$events" --users "$users" --days 30 --out "$out"
  echo "$events:$users" > "$stamp"
fi
[ -f "$out/expected.json" ] && [ "$out/expected.json" -nt "$out/events.parquet" ] || "$PY" "$here/expected.py" "$out"
