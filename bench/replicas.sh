#!/usr/bin/env bash
# Capture throughput with one replica and with three on PostgreSQL (state) + ClickHouse
# (events), side by side in one run (SPEC §10). The load is the same in both rows: three wrk
# processes, each sending batches of BATCH events with uuids no other request uses; in the
# first row all three aim at the one replica, in the second each at its own replica (what a
# load balancer does). Events/s counts what ClickHouse stores (`uniqExact(uuid)` over the run),
# not what wrk sent.
#
#   bench/replicas.sh [BATCH=100] [SECONDS=10] [CONNECTIONS_PER_WRK=10]
#
# Needs PostgreSQL at $DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; a
# schema of its own is created and dropped) and ClickHouse at $CLICKHOUSE_URL (default
# http://127.0.0.1:18123, where scripts/test starts one).
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH=${1:-100}
SECONDS_RUN=${2:-10}
CONNS=${3:-10}
pg="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
ch="${CLICKHOUSE_URL:-http://127.0.0.1:18123}"
source bench/wrk_lib.sh
need_wrk
command -v psql >/dev/null || { echo "psql is missing: apt-get install postgresql-client" >&2; exit 1; }
curl -fsS "$ch/?query=SELECT%201" >/dev/null || { echo "no ClickHouse at $ch (scripts/test starts one)" >&2; exit 1; }
cargo build --release --bin liftoff -q
bin=target/release/liftoff
bench_scratch
run_id=$(date +%s)
schemas=()
databases=()
cleanup_stores() {
  for s in "${schemas[@]}"; do psql -q "$pg" -c "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; done
  for d in "${databases[@]}"; do curl -fsS "$ch/" --data-binary "DROP DATABASE IF EXISTS $d" >/dev/null || true; done
}
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; cleanup_stores; [ -n "${BENCH_KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"' EXIT
TOKEN=bench-admin-token-0123456789abcdef

# replicas NAME N → starts N replicas sharing a fresh schema and database; ports in $ports
replicas() {
  local name=$1 n=$2 schema="bench_${1}_$run_id" db="liftoff_bench_${1}_$run_id" i port
  psql -q "$pg" -c "CREATE SCHEMA $schema" >/dev/null
  schemas+=("$schema"); databases+=("$db")
  ports=()
  for i in $(seq 1 "$n"); do
    port=$((7200 + ${#pids[@]}))
    env LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=bench-password "$bin" serve \
      --data "$work/$name-$i" --listen "127.0.0.1:$port" --log-format json \
      --state-url "$pg?options=-csearch_path%3D$schema" --events-url "$ch/$db" \
      --ingest-rate-limit-per-second 0 --rate-limit-per-second 0 >>"$work/$name-$i.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.05; done
    curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" || { echo "replica $name-$i did not start" >&2; cat "$work/$name-$i.log" >&2; exit 1; }
    ports+=("$port")
  done
  db_name=$db
}

# load PORT… → runs three wrk processes at once, the k-th against the k-th port given (the
# last one repeated), and prints "stored/s p99-of-the-slowest non-2xx"
load() {
  local key k port
  key=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -X POST "http://127.0.0.1:$1/api/keys" -d '{"name":"bench","scope":"ingest"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
  local before
  before=$(curl -fsS "$ch/" --data-binary "SELECT uniqExact(uuid) FROM $db_name.events")
  local wrks=()
  for k in 1 2 3; do
    port=${!k:-${!#}}
    capture_lua "$BATCH" "$key" $((k * 16)) >"$work/post-$k.lua"
    wrk -t1 -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s "$work/post-$k.lua" "http://127.0.0.1:$port" >"$work/wrk-$k.txt" &
    wrks+=($!)
  done
  for w in "${wrks[@]}"; do wait "$w"; done
  local after p99 non2xx=0 n
  after=$(curl -fsS "$ch/" --data-binary "SELECT uniqExact(uuid) FROM $db_name.events")
  p99=$(awk '$1=="99%" { v = $2 + 0; if ($2 ~ /us$/) v /= 1000; else if ($2 ~ /[0-9]s$/) v *= 1000; if (v > m) m = v } END { printf "%.1fms", m }' "$work"/wrk-*.txt)
  for k in 1 2 3; do n=$(awk '/Non-2xx/ {print $NF}' "$work/wrk-$k.txt"); non2xx=$((non2xx + ${n:-0})); done
  echo "$(( (after - before) / SECONDS_RUN )) $p99 $non2xx"
}

rss_of() { local p total=0; for p in "$@"; do total=$((total + $(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$p/status"))); done; echo "$total"; }

replicas one 1
first=${#pids[@]}
read -r one_rate one_p99 one_bad <<<"$(load "${ports[@]}")"
one_rss=$(rss_of "${pids[@]:0:$first}")
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
replicas three 3
read -r three_rate three_p99 three_bad <<<"$(load "${ports[@]}")"
three_rss=$(rss_of "${pids[@]}")

echo "## Capture on PostgreSQL + ClickHouse $(curl -fsS "$ch/?query=SELECT%20version()"): one replica and three ($(nproc) CPUs, batches of $BATCH, 3 × wrk -t1 -c$CONNS -d${SECONDS_RUN}s)"
echo
echo "| replicas | events stored/s | p99 (slowest wrk) | non-2xx | Liftoff RSS, all replicas |"
echo "| --- | ---: | ---: | ---: | ---: |"
printf '| 1 | %s | %s | %s | %s MB |\n' "$one_rate" "$one_p99" "$one_bad" "$one_rss"
printf '| 3 | %s | %s | %s | %s MB |\n' "$three_rate" "$three_p99" "$three_bad" "$three_rss"
