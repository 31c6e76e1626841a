#!/usr/bin/env bash
# 100M events in ClickHouse, asked through Liftoff: the questions ClickHouse answers itself,
# timed over HTTP, beside ClickHouse's own windowFunnel over the same rows.
#
#   bench/analytics/clickhouse_100m.sh [EVENTS=100000000] [USERS=2000000]
#
# Importing 100M events over HTTP would take the better part of an hour on two cores, so the
# rows are generated inside ClickHouse (INSERT … SELECT FROM numbers) into the table Liftoff
# created: USERS users, EVENTS events at pseudo-random times over the 30 days before today,
# names drawn with fixed weights (page_view 50 %, search 20 %, view_item 15 %, signup 7 %,
# add_to_cart 5 %, purchase 3 %), a uuid each, no persons. The 30-day funnel is left out: on
# ClickHouse 18.x Liftoff answers it by reading the span's rows (see BENCHMARKS.md).
# ClickHouse must answer at $CLICKHOUSE_URL (default http://127.0.0.1:18123).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
EVENTS=${1:-100000000}
USERS=${2:-2000000}
ch="${CLICKHOUSE_URL:-http://127.0.0.1:18123}"
curl -fsS "$ch/?query=SELECT%201" >/dev/null || { echo "no ClickHouse at $ch (scripts/test starts one)" >&2; exit 1; }
cargo build --release --bin liftoff -q
bin=target/release/liftoff
work=$(mktemp -d)
db="liftoff_bench_100m_$(date +%s)"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; curl -fsS "$ch/" --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null || true; }
trap cleanup EXIT
TOKEN=bench-admin-token-0123456789abcdef
chq() { curl -fsS "$ch/" --data-binary "$1"; }

env LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=bench-password "$bin" serve \
  --data "$work/data" --listen 127.0.0.1:7097 --log-format json --events-url "$ch/$db" \
  --rate-limit-per-second 0 >"$work/liftoff.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do curl -sf -o /dev/null http://127.0.0.1:7097/readyz && break; sleep 0.05; done
curl -sf -o /dev/null http://127.0.0.1:7097/readyz || { echo "liftoff did not start" >&2; cat "$work/liftoff.log" >&2; exit 1; }

start_ms=$(( ($(date +%s) / 86400 - 30) * 86400000 ))
span_ms=$(( 30 * 86400000 ))
chunk=10000000
echo "== generating $EVENTS events for $USERS users in ClickHouse" >&2
t0=$(date +%s.%N)
for ((from = 0; from < EVENTS; from += chunk)); do
  n=$(( EVENTS - from < chunk ? EVENTS - from : chunk ))
  chq "INSERT INTO $db.events
    SELECT toInt64(number) AS seq,
      toUUID(concat(substring(h1, 1, 8), '-', substring(h1, 9, 4), '-4', substring(h1, 14, 3), '-8',
        substring(h2, 2, 3), '-', substring(h2, 5, 12))) AS uuid,
      1 AS has_uuid,
      $start_ms + toInt64(intHash64(number) % $span_ms) AS ts,
      concat('u', toString(intHash32(number) % $USERS)) AS user_id,
      CAST(NULL AS Nullable(String)) AS session_id,
      multiIf(r < 50, 'page_view', r < 70, 'search', r < 85, 'view_item', r < 92, 'signup',
        r < 97, 'add_to_cart', 'purchase') AS event,
      '{\"browser\":\"Chrome\"}' AS properties
    FROM (SELECT number, substring(concat(hex(intHash64(number + 1)), '0000000000000000'), 1, 16) AS h1,
                 substring(concat(hex(intHash64(number + 2)), '0000000000000000'), 1, 16) AS h2,
                 intHash32(number + 3) % 100 AS r
          FROM numbers($from, $n))"
  echo "   $(( from + n )) rows" >&2
done
t1=$(date +%s.%N)
echo "== waiting for ClickHouse's merges to settle" >&2
for _ in $(seq 1 600); do
  [ "$(chq "SELECT count() FROM system.merges WHERE database = '$db'")" = 0 ] && break
  sleep 2
done
parts=$(chq "SELECT count() FROM system.parts WHERE database = '$db' AND table = 'events' AND active")

q() { # method path [body] → seconds of one request
  if [ "$1" = POST ]; then
    curl -sf -o /dev/null -w '%{time_total}' -m 600 -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -X POST "http://127.0.0.1:7097$2" -d "$3"
  else
    curl -sf -o /dev/null -w '%{time_total}' -m 600 -H "authorization: Bearer $TOKEN" "http://127.0.0.1:7097$2"
  fi
}
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
ms() { python3 -c "import sys; print(format(round(float(sys.argv[1]) * 1000), ','))" "$1"; }
row() { # label method path [body]; a question that fails prints Liftoff's answer instead
  local body
  if ! q "$2" "$3" "${4:-}" >/dev/null; then # warm
    if [ "$2" = POST ]; then
      body=$(curl -s -m 600 -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -X POST "http://127.0.0.1:7097$3" -d "$4")
    else
      body=$(curl -s -m 600 -H "authorization: Bearer $TOKEN" "http://127.0.0.1:7097$3")
    fi
    printf '| %s | failed: %s |\n' "$1" "$(echo "$body" | cut -c1-300)"
    return
  fi
  printf '| %s | %s ms |\n' "$1" "$(ms "$(median3 "$(q "$2" "$3" "${4:-}")" "$(q "$2" "$3" "${4:-}")" "$(q "$2" "$3" "${4:-}")")")"
}
FUNNEL6='{"funnel_steps":["signup","search","view_item","purchase"],"days":6,"conversion_window_days":1}'
echo "## $(printf "%'d" "$EVENTS") events of $(printf "%'d" "$USERS") users in ClickHouse $(chq 'SELECT version()') ($(nproc) CPUs)"
echo
printf 'Generated inside ClickHouse in %.0f s; %s active parts after merges; on disk %s.\n\n' \
  "$(echo "$t1 - $t0" | bc -l)" "$parts" \
  "$(chq "SELECT formatReadableSize(sum(bytes_on_disk)) FROM system.parts WHERE database = '$db' AND active")"
echo "| question through Liftoff (over HTTP, median of 3 after one warm-up) | time |"
echo "| --- | ---: |"
row "funnel, 4 steps, 6 days (windowFunnel)" POST /api/analytics/funnel "$FUNNEL6"
row "active users 5m/1h/24h (uniqExact)" GET /api/monitoring/dashboard
row "top events, 30 days (count, uniqExact)" GET "/api/analytics/features?days=30"
row "DAU/WAU/MAU series (uniqExact per day, week, month)" GET /api/analytics/active-users
row "retention, 30 days (active days joined to first days)" POST /api/analytics/retention '{"days":30}'
row "sessions, 30 days (each user's times as arrays)" GET "/api/analytics/sessions?days=30"
echo
lo=$(( ($(date +%s) / 86400 - 6) * 86400 ))
t0=$(date +%s.%N)
direct=$(chq "SELECT groupArray(c) FROM (SELECT level, count() AS c FROM (SELECT user_id, windowFunnel(86400)(toDateTime(intDiv(ts, 1000)), event = 'signup', event = 'search', event = 'view_item', event = 'purchase') AS level FROM $db.events WHERE ts >= $lo * 1000 GROUP BY user_id) WHERE level > 0 GROUP BY level ORDER BY level)")
t1=$(date +%s.%N)
liftoff=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -X POST http://127.0.0.1:7097/api/analytics/funnel -d "$FUNNEL6" | python3 -c 'import json,sys; print([s["users"] for s in json.load(sys.stdin)["analysis"]])')
printf 'ClickHouse alone, windowFunnel over the 6 days at whole seconds (no Liftoff, no FINAL): %s ms; users reaching exactly level 1..4: %s. Liftoff'"'"'s funnel (users reaching at least each step, times in ms): %s.\n' \
  "$(ms "$(echo "$t1 - $t0" | bc -l)")" "$direct" "$liftoff"
printf 'Liftoff RSS after the queries: %s MB.\n' "$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status")"
