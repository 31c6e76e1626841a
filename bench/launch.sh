#!/usr/bin/env bash
# Soft-launch admission over HTTP (`GET /api/launch/user-limit`), measured with wrk on
# loopback in one run against a bare axum handler answering the same shape
# (crates/liftoff-http/examples/bare_axum.rs):
#   - "seated": users who already hold a seat ask again (what an app does on each request
#     without a cache): one indexed read;
#   - "new": every ask is a new user under a limit that is never reached: one write
#     transaction per ask (insert the seat, commit), SQLite in WAL mode.
#
# Usage: bench/launch.sh [SECONDS=10] [CONNECTIONS=64]
# Needs: wrk (Debian package `wrk`), curl. Builds both binaries in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-10}
CONNS=${2:-64}
THREADS=2
SEATED=1000
. bench/wrk_lib.sh
need_wrk

cargo build --release --bin liftoff --example bare_axum -q
LIFTOFF=target/release/liftoff
BARE=target/release/examples/bare_axum

bench_scratch

TOKEN=bench-admin-token-0123456789abcdef
env -u LIFTOFF_DATA LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=bench-password \
  $LIFTOFF serve --data "$work/data" --listen 127.0.0.1:7096 --log-format json \
  --ingest-rate-limit-per-second 0 --rate-limit-per-second 0 >"$work/liftoff.log" 2>&1 &
pids+=($!)
$BARE 127.0.0.1:7097 1 >"$work/bare.log" 2>&1 &
pids+=($!)
for url in http://127.0.0.1:7096/readyz "http://127.0.0.1:7097/api/launch/user-limit?user_id=x"; do
  for _ in $(seq 1 100); do curl -sf -o /dev/null "$url" -m 1 && break; sleep 0.05; done
done

api() { curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@"; }
INGEST=$(api -X POST http://127.0.0.1:7096/api/keys -d '{"name":"bench","scope":"ingest"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
api -X PATCH http://127.0.0.1:7096/api/launch -d '{"user_limit": 10000000}' >/dev/null
for i in $(seq 0 $((SEATED - 1))); do
  curl -sf -o /dev/null -H "authorization: Bearer $INGEST" "http://127.0.0.1:7096/api/launch/user-limit?user_id=seated-$i"
done

script() { # file prefix modulo(0 = never repeat)
  cat >"$1" <<LUA
wrk.headers["Authorization"] = "Bearer $INGEST"
local thread_id = 0
setup = function(thread) thread:set("tid", thread_id); thread_id = thread_id + 1 end
counter = 0
request = function()
  counter = counter + 1
  local n = counter
  if $3 > 0 then n = counter % $3 else n = tid .. "-" .. counter end
  return wrk.format("GET", "/api/launch/user-limit?user_id=$2" .. n)
end
LUA
}
script "$work/seated.lua" seated- $SEATED
script "$work/new.lua" new- 0


echo "## Admission asks, wrk -t$THREADS -c$CONNS -d${SECONDS_RUN}s, $(nproc) CPUs"
echo
echo "| server | requests/s | p50 | p99 | non-2xx |"
echo "| --- | ---: | ---: | ---: | ---: |"
wrk_row "bare axum (fixed body)" http://127.0.0.1:7097/ "$work/seated.lua"
wrk_row "liftoff, seated users asking again" http://127.0.0.1:7096/ "$work/seated.lua"
wrk_row "liftoff, new users (one write each)" http://127.0.0.1:7096/ "$work/new.lua"
admitted=$(api http://127.0.0.1:7096/api/launch | sed -E 's/.*"admitted_count":([0-9]+).*/\1/')
echo
echo "Seats held at the end: $admitted (each new-user ask that answered 2xx is one committed seat)."
