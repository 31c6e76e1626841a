#!/usr/bin/env bash
# Fuzzes every operation of /api/openapi.json with schemathesis (--checks all, stateful phase
# on) against a fresh `liftoff serve` from BIN, with the admin token. Any server error (ST101,
# ST102) fails the run; the other findings are printed and saved in target/schemathesis/ (the
# document's own defects are tracked as contract work).
#
# Usage: tests/schemathesis/run.sh BIN [EXAMPLES=30]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:?usage: tests/schemathesis/run.sh BIN [EXAMPLES]}
EXAMPLES=${2:-30}
ST="${CARGO_TARGET_DIR:-target}/python-venv/bin/schemathesis"
[ -x "$ST" ] || { echo "error: $ST is missing; scripts/test installs tests/python/requirements.txt" >&2; exit 1; }
out="${CARGO_TARGET_DIR:-target}/schemathesis"
rm -rf "$out"; mkdir -p "$out"
TOKEN=schemathesis-admin-token-0123456789abcdef
port=7391
env LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=schemathesis-password "$BIN" serve \
  --data "$out/data" --listen 127.0.0.1:$port --rate-limit-per-second 0 \
  --ingest-rate-limit-per-second 0 --failed-auth-per-minute 0 >"$out/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:$port/readyz && break; sleep 0.1; done
set +e
"$ST" run "http://127.0.0.1:$port/api/openapi.json" --checks all -n "$EXAMPLES" --seed 1 \
  -H "Authorization: Bearer $TOKEN" --request-timeout 10 --suppress-health-check all \
  --generation-database "$out/examples" \
  --report junit --report-junit-path "$out/junit.xml" >"$out/report.txt" 2>&1
set -e
sed -n '/=== SUMMARY ===/,$p' "$out/report.txt"
kill -0 $pid 2>/dev/null || { echo "error: liftoff exited during the run; see $out/server.log" >&2; exit 1; }
[ -s "$out/junit.xml" ] || { echo "error: schemathesis wrote no report; see $out/report.txt" >&2; exit 1; }
server_errors=$(grep -c 'message="[^"]*ST10[12]' "$out/junit.xml" || true)
if [ "$server_errors" != 0 ]; then
  echo "error: $server_errors operations answered 5xx; see $out/report.txt" >&2
  grep -B2 -A12 'Server error' "$out/report.txt" | head -80 >&2
  exit 1
fi
echo "schemathesis: no server errors"
