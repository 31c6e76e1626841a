#!/usr/bin/env bash
# OFREP bulk evaluation throughput over HTTP: Liftoff against a bare axum handler that returns
# a fixed body of the same shape (crates/liftoff-http/examples/bare_axum.rs), measured in the
# same run with wrk on loopback.
#
# Usage: bench/ofrep.sh [FLAGS=20] [SECONDS=10] [CONNECTIONS=64]
#        SERVER_BIN=path bench/ofrep.sh   measures that build of liftoff (say, an earlier one)
#        PROFILE=bench/profiles/ofrep.svg bench/ofrep.sh   also draws a flamegraph of the server
#        under the returning-users load (perf + inferno; see profile_during in wrk_lib.sh)
# Liftoff runs with the ingest rate limit off, so the figure is evaluation, not throttling.
# Needs: wrk (Debian package `wrk`), curl. Builds both binaries in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
FLAGS=${1:-20}
SECONDS_RUN=${2:-10}
CONNS=${3:-64}
THREADS=2
. bench/wrk_lib.sh
need_wrk

cargo build --release --bin liftoff --example bare_axum -q
LIFTOFF=${SERVER_BIN:-target/release/liftoff}
BARE=target/release/examples/bare_axum

bench_scratch

TOKEN=bench-admin-token-0123456789abcdef
env -u LIFTOFF_DATA LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=bench-password \
  $LIFTOFF serve --data "$work/data" --listen 127.0.0.1:7098 --log-format json --ingest-rate-limit-per-second 0 >"$work/liftoff.log" 2>&1 &
pids+=($!)
$BARE 127.0.0.1:7099 "$FLAGS" >"$work/bare.log" 2>&1 &
pids+=($!)
for url in http://127.0.0.1:7098/readyz http://127.0.0.1:7099/ofrep/v1/evaluate/flags; do
  for _ in $(seq 1 100); do curl -s -o /dev/null -X POST "$url" -m 1 && break; curl -sf -o /dev/null "$url" && break; sleep 0.05; done
done

api() { curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@"; }
INGEST=$(api -X POST http://127.0.0.1:7098/api/keys -d '{"name":"bench","scope":"ingest"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
for i in $(seq 0 $((FLAGS - 1))); do
  case $((i % 4)) in
    0) body="{\"flag_id\":\"flag-$i\",\"strategy\":\"percentage\",\"percentage\":50}" ;;
    1) body="{\"flag_id\":\"flag-$i\",\"strategy\":\"user_attribute\",\"attributes\":{\"plan\":[\"pro\",\"team\"]}}" ;;
    2) body="{\"flag_id\":\"flag-$i\",\"variants\":[{\"name\":\"a\",\"weight\":1},{\"name\":\"b\",\"weight\":1}]}" ;;
    3) body="{\"flag_id\":\"flag-$i\",\"strategy\":\"user_list\",\"user_whitelist\":[\"u1\",\"u2\"]}" ;;
  esac
  api -X POST http://127.0.0.1:7098/api/feature-flags -d "$body" >/dev/null
done

# KEYS=0: a new targetingKey on every request (each one also asks for a seat: a write);
# KEYS=N: N returning users, cycled (their seats are settled: answered from reads).
script() { # file keys
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $INGEST"
local thread_id = 0
setup = function(thread) thread:set("tid", thread_id); thread_id = thread_id + 1 end
counter = 0
request = function()
  counter = counter + 1
  local n = tid .. "-" .. counter
  if $2 > 0 then n = counter % $2 end
  local body = '{"context":{"targetingKey":"user-' .. n .. '","plan":"pro"}}'
  return wrk.format(nil, nil, nil, body)
end
LUA
}
script "$work/post.lua" 0
script "$work/returning.lua" 1000

echo "## OFREP bulk evaluation, $FLAGS flags, wrk -t$THREADS -c$CONNS -d${SECONDS_RUN}s, $(nproc) CPUs"
echo
echo "| server | requests/s | p50 | p99 | non-2xx |"
echo "| --- | ---: | ---: | ---: | ---: |"
wrk_row "bare axum (fixed body)" http://127.0.0.1:7099/ofrep/v1/evaluate/flags "$work/post.lua"
if [ -n "${PROFILE:-}" ]; then
  (sleep 1; profile_during "${pids[0]}" $((SECONDS_RUN - 2)) "$PROFILE" \
    "POST /ofrep/v1/evaluate/flags, $FLAGS flags, 1,000 returning users, $CONNS connections ($(git rev-parse --short HEAD))") &
  profiler=$!
fi
wrk_row "liftoff, 1,000 returning users (auth + evaluation + settled seats)" http://127.0.0.1:7098/ofrep/v1/evaluate/flags "$work/returning.lua"
[ -z "${profiler:-}" ] || wait "$profiler"
wrk_row "liftoff, a new user per request (+ one seat or waitlist write each)" http://127.0.0.1:7098/ofrep/v1/evaluate/flags "$work/post.lua"
