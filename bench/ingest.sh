#!/usr/bin/env bash
# Request-metrics ingest throughput: requests recorded per second through
# POST /api/ingest/requests (batches of BATCH records, each answered only after its group
# commit), against a bare axum handler that parses the same batch and discards it
# (crates/liftoff-http/examples/bare_axum.rs), both measured in the same run with wrk.
#
# Usage: bench/ingest.sh [BATCH=1000] [SECONDS=10] [CONNECTIONS=32]
#        PROFILE=bench/profiles/request-ingest.svg bench/ingest.sh   also draws a flamegraph
#        of the server under the load (perf + inferno; see profile_during in wrk_lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH=${1:-1000}
SECONDS_RUN=${2:-10}
CONNS=${3:-32}
source bench/wrk_lib.sh
need_wrk
cargo build --release --bin liftoff --example bare_axum -q

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
TOKEN=bench-admin-token-0123456789abcdef
# 50 MiB bodies allowed; rate limits off: the figure is ingest, not throttling.
env LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=bench-password target/release/liftoff serve \
  --data "$work/data" --listen 127.0.0.1:7096 --log-format json --max-body-bytes 52428800 \
  --ingest-rate-limit-per-second 0 >"$work/liftoff.log" 2>&1 &
pids+=($!)
target/release/examples/bare_axum 127.0.0.1:7097 >"$work/bare.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:7096/readyz && break; sleep 0.05; done
INGEST=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -X POST http://127.0.0.1:7096/api/keys -d '{"name":"bench","scope":"ingest"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')

python3 - "$BATCH" >"$work/batch.json" <<'PY'
import json, sys
n = int(sys.argv[1])
routes = [f"/api/r{i}/{{id}}" for i in range(200)]
print(json.dumps([{"service": "bench", "method": "GET", "route": routes[i % 200],
                   "status": 500 if i % 97 == 0 else 200, "duration_ms": 1 + (i * 37 % 900) / 3}
                  for i in range(n)]))
PY
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $INGEST"
local f = io.open("$work/batch.json", "r")
wrk.body = f:read("*a")
f:close()
LUA
run() { # name url
  wrk -t2 -c$CONNS -d${SECONDS_RUN}s --latency -s "$work/post.lua" "$2" >"$work/$1.txt"
  local rps p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$1.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/$1.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/$1.txt")
  printf '| %s | %s | %.0f | %s | %s |\n' "$1" "$rps" "$(echo "$rps * $BATCH" | bc -l)" "$p99" "${non2xx:-0}"
}
echo "## Request ingest, batches of $BATCH, wrk -t2 -c$CONNS -d${SECONDS_RUN}s, $(nproc) CPUs"
echo
echo "| server | batches/s | records/s | p99 | non-2xx |"
echo "| --- | ---: | ---: | ---: | ---: |"
run "bare axum (parse only)" http://127.0.0.1:7097/api/ingest/requests
if [ -n "${PROFILE:-}" ]; then
  (sleep 1; profile_during "${pids[0]}" $((SECONDS_RUN - 2)) "$PROFILE" \
    "POST /api/ingest/requests, batches of $BATCH, $CONNS connections ($(git rev-parse --short HEAD))") &
  profiler=$!
fi
run "liftoff (validate + fold + durable group commit)" http://127.0.0.1:7096/api/ingest/requests
[ -z "${profiler:-}" ] || wait "$profiler"
recorded=$(curl -sf -H "authorization: Bearer $TOKEN" "http://127.0.0.1:7096/api/monitoring/performance/summary?window=15m" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"]["total"])')
echo
echo "Liftoff's store holds $recorded requests afterwards (every 2xx batch is committed)."
