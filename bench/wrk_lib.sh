# What the wrk-driven HTTP benchmarks share (sourced by bench/ofrep.sh and bench/launch.sh).
# They set THREADS, CONNS and SECONDS_RUN before calling wrk_row.

need_wrk() {
  command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
}

# A scratch directory ($work) and the background processes started ($pids), stopped and
# removed on exit.
bench_scratch() {
  work=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
}

# wrk_row NAME URL SCRIPT: runs wrk with the Lua SCRIPT against URL and prints one Markdown
# row: requests/s, p50, p99, non-2xx answers.
wrk_row() {
  wrk -t"$THREADS" -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s "$3" "$2" >"$work/wrk.txt"
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1=="50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
}
