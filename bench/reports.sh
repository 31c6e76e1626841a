#!/usr/bin/env bash
# Report generation on the demo data (a month of a shop's traffic, events, incidents): the
# weekly, performance and product reports over HTTP in each format (median of N requests), and
# as the reference the same weekly HTML printed to PDF by headless Chromium (`--print-to-pdf`,
# median of 5), measured in the same run.
#
# Usage: bench/reports.sh [N=20]    (CHROMIUM_PATH overrides /usr/bin/chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "Chromium is missing at $CHROMIUM: apt-get install chromium" >&2; exit 1; }
cargo build --release --bin liftoff -q

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
TOKEN=bench-admin-token-0123456789abcdef
env LIFTOFF_ADMIN_TOKEN=$TOKEN LIFTOFF_ADMIN_PASSWORD=bench-password target/release/liftoff serve \
  --demo --data "$work/data" --listen 127.0.0.1:7098 --log-format json >"$work/liftoff.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do curl -sf -o /dev/null http://127.0.0.1:7098/readyz && break; sleep 0.1; done

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
# Milliseconds of each of N requests for a URL; prints the median and the body size.
measure() {
  local url=$1 times=() size=0
  curl -sf -o /dev/null -H "authorization: Bearer $TOKEN" "$url"   # warm the caches
  for _ in $(seq 1 "$N"); do
    read -r t s < <(curl -sf -o "$work/body" -w '%{time_total} %{size_download}\n' \
      -H "authorization: Bearer $TOKEN" "$url")
    times+=("$(awk -v t="$t" 'BEGIN {printf "%.1f", t * 1000}')")
    size=$s
  done
  printf '%s\n' "${times[@]}" | median | tr -d '\n'
  printf ' ms, %s bytes\n' "$size"
}

echo "## Reports on the demo data, median of $N ($(nproc) cores)"
for kind in weekly performance product; do
  for format in json md html pdf; do
    printf '%-12s %-5s ' "$kind" "$format"
    measure "http://127.0.0.1:7098/api/reports/$kind?format=$format"
  done
done

curl -sf -H "authorization: Bearer $TOKEN" -o "$work/weekly.html" \
  "http://127.0.0.1:7098/api/reports/weekly?format=html"
chrome=()
for i in 1 2 3 4 5; do
  start=$(date +%s%N)
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-pdf-header-footer \
    --user-data-dir="$work/chrome-$i" --print-to-pdf="$work/chrome.pdf" \
    "file://$work/weekly.html" >/dev/null 2>&1
  chrome+=($(( ($(date +%s%N) - start) / 1000000 )))
done
printf '%-18s ' "chromium print-to-pdf of the weekly HTML:"
printf '%s\n' "${chrome[@]}" | median | tr -d '\n'
printf ' ms, %s bytes\n' "$(stat -c %s "$work/chrome.pdf")"
