#!/usr/bin/env bash
# Checks /api/openapi.json with openapi-spec-validator, then fuzzes every operation with
# schemathesis (--checks all, at least EXAMPLES examples per operation, stateful phase on)
# against a fresh `liftoff serve` from BIN, with the admin token. Fails on an invalid document
# and on any finding (operation + check code) not listed, with its reason, in
# tests/schemathesis/baseline.json. The report is kept in target/schemathesis/.
#
# Usage: tests/schemathesis/run.sh BIN [EXAMPLES=30]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:?usage: tests/schemathesis/run.sh BIN [EXAMPLES]}
EXAMPLES=${2:-30}
venv="${CARGO_TARGET_DIR:-target}/python-venv/bin"
ST="$venv/schemathesis"
[ -x "$ST" ] && [ -x "$venv/openapi-spec-validator" ] \
  || { echo "error: $ST or openapi-spec-validator is missing; scripts/test installs tests/python/requirements.txt" >&2; exit 1; }
out="${CARGO_TARGET_DIR:-target}/schemathesis"
rm -rf "$out"; mkdir -p "$out"
TOKEN=schemathesis-admin-token-0123456789abcdef
# Port 0: the server picks a free port and logs `listening on http://ADDR`.
env LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=schemathesis-password NO_COLOR=1 "$BIN" serve \
  --data "$out/data" --listen 127.0.0.1:0 --rate-limit-per-second 0 \
  --ingest-rate-limit-per-second 0 --failed-auth-per-minute 0 >"$out/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
base=""
for _ in $(seq 1 150); do
  base=$(grep -so 'listening on http://[0-9.:]*' "$out/server.log" | head -1 | sed 's/^listening on //' || true)
  [ -n "$base" ] && curl -sf -o /dev/null "$base/readyz" && break
  kill -0 $pid 2>/dev/null || { echo "error: liftoff exited at start; see $out/server.log" >&2; cat "$out/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "error: liftoff did not say where it listens; see $out/server.log" >&2; exit 1; }
curl -sf "$base/api/openapi.json" -o "$out/openapi.json"
"$venv/openapi-spec-validator" "$out/openapi.json"
set +e
"$ST" run "$base/api/openapi.json" --checks all -n "$EXAMPLES" --seed 1 \
  -H "Authorization: Bearer $TOKEN" --request-timeout 10 --suppress-health-check all \
  --generation-database "$out/examples" \
  --report junit --report-junit-path "$out/junit.xml" >"$out/report.txt" 2>&1
set -e
sed -n '/=== SUMMARY ===/,$p' "$out/report.txt"
kill -0 $pid 2>/dev/null || { echo "error: liftoff exited during the run; see $out/server.log" >&2; exit 1; }
[ -s "$out/junit.xml" ] || { echo "error: schemathesis wrote no report; see $out/report.txt" >&2; exit 1; }
"$venv/python" tests/schemathesis/findings.py "$out/junit.xml" tests/schemathesis/baseline.json \
  || { echo "error: see $out/report.txt for each finding with a curl command to reproduce it" >&2; exit 1; }
