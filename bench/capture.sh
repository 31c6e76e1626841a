#!/usr/bin/env bash
# Product-event capture throughput: events stored per second through POST /api/ingest/events
# in batches of BATCH (each with fresh uuids, answered only after the group commit to
# events.db), against raw SQLite inserts of the same rows with the same durability
# (crates/liftoff-store/examples/raw_sqlite_events.rs), measured in the same run.
#
# Usage: bench/capture.sh [BATCH=100] [SECONDS=10] [CONNECTIONS=32]
#        SERVER_BIN=path bench/capture.sh   measures that build of liftoff (say, an earlier one)
#        PROFILE=bench/profiles/capture.svg bench/capture.sh   also draws a flamegraph of the
#        server under the load (perf + inferno; see profile_during in wrk_lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH=${1:-100}
SECONDS_RUN=${2:-10}
CONNS=${3:-32}
source bench/wrk_lib.sh
need_wrk
cargo build --release --bin liftoff -q
cargo build --release -p liftoff-store --example raw_sqlite_events -q

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
TOKEN=bench-admin-token-0123456789abcdef
env LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=bench-password "${SERVER_BIN:-target/release/liftoff}" serve \
  --data "$work/data" --listen 127.0.0.1:7093 --log-format json \
  --ingest-rate-limit-per-second 0 >"$work/liftoff.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:7093/readyz && break; sleep 0.05; done
INGEST=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -X POST http://127.0.0.1:7093/api/keys -d '{"name":"bench","scope":"ingest"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')

capture_lua "$BATCH" "$INGEST" >"$work/post.lua"
if [ -n "${PROFILE:-}" ]; then
  (sleep 1; profile_during "${pids[0]}" $((SECONDS_RUN - 2)) "$PROFILE" \
    "POST /api/ingest/events, batches of $BATCH, $CONNS connections ($(git rev-parse --short HEAD))") &
  profiler=$!
fi
wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s "$work/post.lua" http://127.0.0.1:7093 >"$work/wrk.txt"
[ -z "${profiler:-}" ] || wait "$profiler"
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
p99=$(awk '$1=="99%" {print $2}' "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
stored=$(curl -sf -H "authorization: Bearer $TOKEN" "http://127.0.0.1:7093/metrics" |
  awk '$1=="liftoff_events_ingested_total" {print $2}')
curl -sf -X POST -o /dev/null http://127.0.0.1:7093/readyz || true
kill -TERM "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true   # SIGTERM checkpoints the WAL
bytes=$(du -b "$work/data/events.db" | cut -f1)
raw=$(target/release/examples/raw_sqlite_events 300000 "$BATCH")
echo "## Event capture, batches of $BATCH, wrk -t2 -c$CONNS -d${SECONDS_RUN}s, $(nproc) CPUs"
echo
echo "| path | events/s | p99 | non-2xx |"
echo "| --- | ---: | ---: | ---: |"
printf '| raw SQLite inserts (same rows, same durability, one thread) | %s | — | — |\n' "${raw%% *}"
printf '| liftoff POST /api/ingest/events (parse, validate, persons, durable group commit) | %.0f | %s | %s |\n' \
  "$(echo "$rps * $BATCH" | bc -l)" "$p99" "${non2xx:-0}"
echo
echo "Liftoff stored $stored events (liftoff_events_ingested_total); events.db holds $bytes bytes,"
echo "$(python3 -c "print(round($bytes / max($stored, 1), 1))") bytes per event (rows with uuids, persons and indexes)."
