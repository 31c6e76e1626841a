#!/usr/bin/env bash
# The same 10M events in the in-process engine (SQLite, sealed) and in ClickHouse, side by side
# in one run: import over HTTP into each, then the analytics endpoints of each server timed
# over HTTP, and ClickHouse's own windowFunnel over the stored rows for reference.
#
#   bench/analytics/clickhouse.sh [DATA_DIR=target/bench-data-recent]
#
# The data set is bench/kit/gen_events.py's 10M events over the 30 days before today (the
# analytics API asks about the last N days). ClickHouse must answer at $CLICKHOUSE_URL
# (default http://127.0.0.1:18123, where scripts/test starts one).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
data="${1:-target/bench-data-recent}"
ch="${CLICKHOUSE_URL:-http://127.0.0.1:18123}"
source bench/analytics/venv.sh
curl -fsS "$ch/?query=SELECT%201" >/dev/null || { echo "no ClickHouse at $ch (scripts/test starts one)" >&2; exit 1; }
if [ ! -f "$data/events.ndjson.gz" ]; then
  start_ms=$(( ($(date +%s) / 86400 - 30) * 86400000 ))
  "$PY" "$BENCH_KIT/gen_events.py" --out "$data" --start-ms "$start_ms"
fi
n=$(zcat "$data/events.ndjson.gz" | wc -l)
cargo build --release --bin liftoff -q
bin=target/release/liftoff
work=$(mktemp -d)
db="liftoff_bench_$(date +%s)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; curl -fsS "$ch/" --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null || true; }
trap cleanup EXIT
TOKEN=bench-admin-token-0123456789abcdef
start() { # name port [args…] → pid in $pid
  local name=$1 port=$2; shift 2
  env LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=bench-password "$bin" serve \
    --data "$work/$name" --listen "127.0.0.1:$port" --log-format json --max-body-bytes 52428800 \
    --ingest-rate-limit-per-second 0 --rate-limit-per-second 0 "$@" >>"$work/$name.log" 2>&1 &
  pid=$!; pids+=("$pid")
  for _ in $(seq 1 200); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && return; sleep 0.05; done
  echo "$name did not start" >&2; exit 1
}
import() { # port → seconds
  local key t0 t1
  key=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -X POST "http://127.0.0.1:$1/api/keys" -d '{"name":"bench","scope":"ingest"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
  t0=$(date +%s.%N)
  "$bin" import events "$data/events.ndjson.gz" --url "http://127.0.0.1:$1" --token "$key" --batch 5000 >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
q() { # port method path [body] → seconds of one request
  if [ "$2" = POST ]; then
    curl -sf -o /dev/null -w '%{time_total}' -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -X POST "http://127.0.0.1:$1$3" -d "$4"
  else
    curl -sf -o /dev/null -w '%{time_total}' -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$1$3"
  fi
}
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
ms() { python3 -c "import sys; print(format(round(float(sys.argv[1]) * 1000), ','))" "$1"; }
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status"; }

echo "== in-process engine: import, seal" >&2
start engine 7095; engine_pid=$pid
engine_import=$(import 7095)
kill -TERM "$engine_pid"; wait "$engine_pid" || true
LIFTOFF_ADMIN_TOKEN=$TOKEN "$bin" seal --data "$work/engine" --log-format json >/dev/null
start engine 7095; engine_pid=$pid
echo "== ClickHouse: import" >&2
start clickhouse 7096 --events-url "$ch/$db"; ch_pid=$pid
ch_import=$(import 7096)

FUNNEL30='{"funnel_steps":["signup","search","view_item","purchase"],"days":30,"conversion_window_days":7}'
FUNNEL6='{"funnel_steps":["signup","search","view_item","purchase"],"days":6,"conversion_window_days":1}'
row() { # label method path [body]
  local e c
  q 7095 "$2" "$3" "${4:-}" >/dev/null; q 7096 "$2" "$3" "${4:-}" >/dev/null # warm
  e=$(median3 "$(q 7095 "$2" "$3" "${4:-}")" "$(q 7095 "$2" "$3" "${4:-}")" "$(q 7095 "$2" "$3" "${4:-}")")
  c=$(median3 "$(q 7096 "$2" "$3" "${4:-}")" "$(q 7096 "$2" "$3" "${4:-}")" "$(q 7096 "$2" "$3" "${4:-}")")
  printf '| %s | %s ms | %s ms |\n' "$1" "$(ms "$e")" "$(ms "$c")"
}
same() { # method path [body] → whether both servers answer alike
  local a b
  if [ "$1" = POST ]; then
    a=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -X POST "http://127.0.0.1:7095$2" -d "$3")
    b=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -X POST "http://127.0.0.1:7096$2" -d "$3")
  else
    a=$(curl -sf -H "authorization: Bearer $TOKEN" "http://127.0.0.1:7095$2" | sed -E 's/"timestamp":"[^"]*"//')
    b=$(curl -sf -H "authorization: Bearer $TOKEN" "http://127.0.0.1:7096$2" | sed -E 's/"timestamp":"[^"]*"//')
  fi
  [ "$a" = "$b" ] && echo same || echo DIFFERENT
}
t0=$(date +%s.%N)
direct=$(curl -fsS "$ch/" --data-binary "SELECT groupArray(c) FROM (SELECT level, count() AS c FROM (SELECT user_id, windowFunnel(604800)(toDateTime(intDiv(ts, 1000)), event = 'signup', event = 'search', event = 'view_item', event = 'purchase') AS level FROM $db.events GROUP BY user_id) GROUP BY level ORDER BY level)")
t1=$(date +%s.%N)

echo "## $(printf "%'d" "$n") events: the in-process engine and ClickHouse $(curl -fsS "$ch/?query=SELECT%20version()") ($(nproc) CPUs)"
echo
printf 'Import over HTTP (`liftoff import events`, batches of 5,000): in-process engine (SQLite) %.0f s = %.0f events/s; ClickHouse %.0f s = %.0f events/s.\n\n' \
  "$engine_import" "$(echo "$n / $engine_import" | bc -l)" "$ch_import" "$(echo "$n / $ch_import" | bc -l)"
echo "| question (over HTTP, median of 3 after one warm-up) | in-process engine | ClickHouse |"
echo "| --- | ---: | ---: |"
row "funnel, 4 steps, 30 days (ClickHouse 18.x: engine over the span's rows)" POST /api/analytics/funnel "$FUNNEL30"
row "funnel, 4 steps, 6 days (ClickHouse: windowFunnel)" POST /api/analytics/funnel "$FUNNEL6"
row "active users 5m/1h/24h (ClickHouse: uniqExact)" GET /api/monitoring/dashboard
row "top events, 30 days (ClickHouse: count, uniqExact)" GET "/api/analytics/features?days=30"
row "DAU/WAU/MAU series (ClickHouse: uniqExact per day, week, month)" GET /api/analytics/active-users
row "retention, 30 days (ClickHouse: active days joined to first days)" POST /api/analytics/retention '{"days":30}'
row "sessions, 30 days (ClickHouse: times as arrays, in shards of users)" GET "/api/analytics/sessions?days=30"
echo
printf 'ClickHouse alone, windowFunnel over every stored row at whole seconds (no Liftoff): %s ms, users per level %s.\n' "$(ms "$(echo "$t1 - $t0" | bc -l)")" "$direct"
printf 'Answers equal: funnel 30 d %s, funnel 6 d %s, retention %s, sessions %s, top events %s.\n' \
  "$(same POST /api/analytics/funnel "$FUNNEL30")" "$(same POST /api/analytics/funnel "$FUNNEL6")" \
  "$(same POST /api/analytics/retention '{"days":30}')" "$(same GET '/api/analytics/sessions?days=30')" "$(same GET '/api/analytics/features?days=30')"
printf 'RSS after the queries: in-process engine %s MB, Liftoff on ClickHouse %s MB; ClickHouse on disk %s.\n' "$(rss "$engine_pid")" "$(rss "$ch_pid")" \
  "$(curl -fsS "$ch/" --data-binary "SELECT formatReadableSize(sum(bytes_on_disk)) FROM system.parts WHERE database = '$db' AND active")"
