#!/usr/bin/env bash
# The whole server on the 10M-event data set of bench/kit/gen_events.py: import through HTTP with the CLI
# (`liftoff import events`, durable group commit), seal the finished days (`liftoff seal`),
# then time the analytics endpoints over HTTP (cold first query, then warm), the server's RSS
# and the bytes per event on disk. DuckDB's figures for the same queries come from
# bench/analytics/run.sh.
#
#   bench/analytics/server.sh [DATA_DIR=target/bench-data]
#
# REUSE=1 keeps the imported and sealed server data in DATA_DIR/server and, when it is there
# already, starts from it (skipping import and seal, whose rows then read "reused").
# The last step stops the server (SIGTERM: it keeps its analytics table) and times the next
# start to its first funnel, which reads that table instead of building it from the parts.
# SERVER_BIN=path measures that build of liftoff (say, an earlier one). A reused directory
# keeps the events the under-ingest step added, unsealed, so later runs load more rows.
set -euo pipefail
cd "$(dirname "$0")/../.."
data="${1:-target/bench-data}"
[ -f "$data/events.ndjson.gz" ] || { echo "no $data/events.ndjson.gz: run bench/analytics/run.sh first" >&2; exit 1; }
cargo build --release --bin liftoff -q
bin=${SERVER_BIN:-target/release/liftoff}
if [ "${REUSE:-0}" = 1 ]; then work="$data/server"; mkdir -p "$work"; else work=$(mktemp -d); fi
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; [ "${REUSE:-0}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
TOKEN=bench-admin-token-0123456789abcdef
start() {
  started=$(date +%s.%N)
  env LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=bench-password "$bin" serve \
    --data "$work/data" --listen 127.0.0.1:7092 --log-format json --max-body-bytes 52428800 \
    --ingest-rate-limit-per-second 0 --rate-limit-per-second 0 >>"$work/liftoff.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do curl -sf -o /dev/null http://127.0.0.1:7092/readyz && { ready=$(date +%s.%N); return; }; sleep 0.01; done
  echo "the server did not start" >&2; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=; }
ms() { python3 -c "import sys; print(round(float(sys.argv[1]) * 1000))" "$1"; }
# Bytes in use in events.db: SQLite keeps freed pages for reuse rather than shrinking the file.
used() { python3 -c "
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
pages, free, size = (c.execute(f'PRAGMA {p}').fetchone()[0] for p in ('page_count', 'freelist_count', 'page_size'))
print((pages - free) * size)" "$1"; }

ingest_key() {
  curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -X POST http://127.0.0.1:7092/api/keys -d '{"name":"bench","scope":"ingest"}' | sed -E 's/.*"token":"([^"]+)".*/\1/'
}
if [ "${REUSE:-0}" = 1 ] && [ -f "$work/sealed" ]; then
  t0=0 t1=0 t2=0 t3=0 rows_bytes=0
else
  start
  INGEST=$(ingest_key)
  t0=$(date +%s.%N)
  "$bin" import events "$data/events.ndjson.gz" --url http://127.0.0.1:7092 --token "$INGEST" --batch 5000
  t1=$(date +%s.%N)
  stop
  rows_bytes=$(used "$work/data/events.db")
  t2=$(date +%s.%N)
  LIFTOFF_ADMIN_TOKEN=$TOKEN "$bin" seal --data "$work/data" --log-format json
  t3=$(date +%s.%N)
  touch "$work/sealed"
fi
sealed_bytes=$(used "$work/data/events.db")
# The first start below builds the table from the parts, whatever an earlier run kept.
rm -f "$work/data/analytics-table"
segment_bytes=$(python3 -c "
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute('SELECT SUM(LENGTH(bytes)) FROM event_segments').fetchone()[0])" "$work/data/events.db")
start
q() { # name method path [body] → seconds of one request
  if [ "$2" = POST ]; then
    curl -sf -o /dev/null -w '%{time_total}' -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -X POST "http://127.0.0.1:7092$3" -d "$4"
  else
    curl -sf -o /dev/null -w '%{time_total}' -H "authorization: Bearer $TOKEN" "http://127.0.0.1:7092$3"
  fi
}
FUNNEL='{"funnel_steps":["signup","search","view_item","purchase"],"days":3650,"conversion_window_days":7}'
# Other routes while the table loads: a flag list right after /readyz.
flags_while_loading=$(curl -sf -o /dev/null -w '%{time_total}' -H "authorization: Bearer $TOKEN" http://127.0.0.1:7092/api/feature-flags)
cold=$(q funnel POST /api/analytics/funnel "$FUNNEL")
cold_done=$(date +%s.%N)
answer=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -X POST http://127.0.0.1:7092/api/analytics/funnel -d "$FUNNEL" |
  python3 -c 'import json,sys; print(" → ".join(format(s["users"], ",") for s in json.load(sys.stdin)["analysis"]))')
sessions=$(curl -sf -H "authorization: Bearer $TOKEN" "http://127.0.0.1:7092/api/analytics/sessions?days=3650" | python3 -c 'import json,sys; print(format(json.load(sys.stdin)["sessions"], ","))')
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
row() { # label method path [body]
  local a b c
  a=$(q x "$2" "$3" "${4:-}"); b=$(q x "$2" "$3" "${4:-}"); c=$(q x "$2" "$3" "${4:-}")
  printf '| %s | %s ms |\n' "$1" "$(ms "$(median3 "$a" "$b" "$c")")"
}
n=$(curl -sf -H "authorization: Bearer $TOKEN" "http://127.0.0.1:7092/metrics" | awk '$1=="liftoff_events_ingested_total" {print $2}')
echo "## The server on the 10M-event set ($(nproc) CPUs)"
echo
echo "| step | figure |"
echo "| --- | ---: |"
if [ "$t1" = 0 ]; then
  echo "| import and seal | reused from $work |"
else
printf '| import over HTTP (`liftoff import events`, batches of 5,000, durable) | %.0f s, %.0f events/s |\n' \
  "$(echo "$t1 - $t0" | bc -l)" "$(echo "10000000 / ($t1 - $t0)" | bc -l)"
printf '| events.db as rows (with uuids from the importer, indexes, persons) | %.1f bytes/event |\n' "$(echo "$rows_bytes / 10000000" | bc -l)"
printf '| `liftoff seal` (30 days into segments) | %.0f s |\n' "$(echo "$t3 - $t2" | bc -l)"
fi
printf '| events.db sealed, pages in use (segments + the last week of uuids + persons) | %.1f bytes/event |\n' "$(echo "$sealed_bytes / 10000000" | bc -l)"
printf '| of which the sealed segments | %.1f bytes/event |\n' "$(echo "$segment_bytes / 10000000" | bc -l)"
printf '| start to /readyz | %s ms |\n' "$(ms "$(echo "$ready - $started" | bc -l)")"
printf '| a flag list right after /readyz, while the table loads | %s ms |\n' "$(ms "$flags_while_loading")"
printf '| start to the first funnel answered (the table loads from start) | %s ms |\n' "$(ms "$(echo "$cold_done - $started" | bc -l)")"
printf '| first funnel request itself | %s ms |\n' "$(ms "$cold")"
echo
echo "Funnel: $answer; sessions: $sessions."
echo
echo "| warm query over HTTP (median of 3) | time |"
echo "| --- | ---: |"
row "funnel, 4 steps, 7-day window" POST /api/analytics/funnel "$FUNNEL"
row "active users (DAU/WAU/MAU + 30-day series)" GET "/api/analytics/active-users"
row "retention (cohorts, all days)" POST /api/analytics/retention '{"days":3650}'
row "sessions" GET "/api/analytics/sessions?days=3650"
row "top events with unique users" GET "/api/analytics/features?days=3650&limit=10"
row "paths" GET "/api/analytics/paths?days=3650"
INGEST=$(ingest_key)
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
now_rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo
echo "Server RSS after the queries: $((now_rss / 1024)) MiB now, $((rss / 1024)) MiB peak."
echo
echo "Queries while 5,000 events/s stream in for 30 s (bench/analytics/under_ingest.py):"
"$(dirname "$0")/under_ingest.py" http://127.0.0.1:7092 "$INGEST" "$TOKEN" 5000 30
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
now_rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "Server RSS after: $((now_rss / 1024)) MiB now, $((rss / 1024)) MiB peak."
stop_started=$(date +%s.%N)
stop
stopped=$(date +%s.%N)
kept=$(stat -c %s "$work/data/analytics-table" 2>/dev/null || echo 0)
start
cold=$(q funnel POST /api/analytics/funnel "$FUNNEL")
cold_done=$(date +%s.%N)
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo
echo "A clean restart (SIGTERM, then start again):"
echo
echo "| step | figure |"
echo "| --- | ---: |"
printf '| SIGTERM to exit, the table written (%s MiB) | %s ms |\n' "$((kept >> 20))" "$(ms "$(echo "$stopped - $stop_started" | bc -l)")"
printf '| start to /readyz | %s ms |\n' "$(ms "$(echo "$ready - $started" | bc -l)")"
printf '| start to the first funnel answered (the table read from the last run) | %s ms |\n' "$(ms "$(echo "$cold_done - $started" | bc -l)")"
printf '| peak RSS to that answer | %s MiB |\n' "$((rss / 1024))"
