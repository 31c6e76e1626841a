#!/usr/bin/env bash
# Throughput an app loses to the request-reporting layer: the same axum app
# (crates/liftoff-sdk/examples/layered_app.rs) without and with `RequestReporter::layer()`,
# the layered one reporting to a real Liftoff, each driven by wrk in alternating rounds on
# the same machine.
#
# Usage: bench/layer.sh [SECONDS=10] [CONNECTIONS=32] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-10}
CONNS=${2:-32}
ROUNDS=${3:-3}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --bin liftoff -q
cargo build --release -p liftoff-sdk --example layered_app --features axum -q

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
TOKEN=bench-admin-token-0123456789abcdef
env LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=bench-password target/release/liftoff serve \
  --data "$work/data" --listen 127.0.0.1:7094 --log-format json \
  --ingest-rate-limit-per-second 0 >"$work/liftoff.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:7094/readyz && break; sleep 0.05; done
INGEST=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -X POST http://127.0.0.1:7094/api/keys -d '{"name":"bench","scope":"ingest"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')

target/release/examples/layered_app 127.0.0.1:7098 >"$work/plain.log" 2>&1 &
pids+=($!)
LIFTOFF_URL=http://127.0.0.1:7094 LIFTOFF_TOKEN=$INGEST \
  target/release/examples/layered_app 127.0.0.1:7095 --with-layer >"$work/layered.log" 2>&1 &
layered=$!
pids+=($layered)
for port in 7098 7095; do
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
done

rps() { # url → requests/s
  wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" "$1" | awk '/Requests\/sec/ {print $2}'
}
plain=() layered_rps=()
for r in $(seq 1 "$ROUNDS"); do
  plain+=("$(rps http://127.0.0.1:7098/items/42)")
  layered_rps+=("$(rps http://127.0.0.1:7095/items/42)")
  echo "round $r: without ${plain[-1]} req/s, with ${layered_rps[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median "${plain[@]}")
l=$(median "${layered_rps[@]}")
kill -INT "$layered"; wait "$layered" 2>/dev/null || true
sleep 1
recorded=$(curl -sf -H "authorization: Bearer $TOKEN" \
  "http://127.0.0.1:7094/api/monitoring/performance?window=1h&service=layered-app" |
  python3 -c 'import json,sys; print(sum(e["request_count"] for e in json.load(sys.stdin).values()))')
echo
echo "| app | requests/s (median of $ROUNDS) |"
echo "| --- | ---: |"
echo "| without the layer | $p |"
echo "| with the layer | $l |"
python3 -c "print(f'throughput loss: {(1 - $l / $p) * 100:.1f} %')"
echo "requests Liftoff recorded from the layered app: $recorded ($(tail -1 "$work/layered.log"))"
