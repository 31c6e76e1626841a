# What the wrk-driven HTTP benchmarks share (sourced by bench/ofrep.sh, launch.sh, capture.sh
# and replicas.sh).
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

# profile_during PID SECONDS SVG TITLE: samples PID's stacks for SECONDS with perf (DWARF
# unwinding: release builds keep no frame pointers), folded and drawn by inferno into SVG. Run
# it in the background beside the load. Needs perf and inferno (`cargo install inferno`).
# FOLDED=file also keeps the folded stacks, for reading the profile as text.
profile_during() {
  command -v inferno-flamegraph >/dev/null ||
    { echo "PROFILE needs inferno-flamegraph: cargo install inferno" >&2; exit 1; }
  perf record -q -F 499 --call-graph dwarf,16384 -p "$1" -o "$work/perf.data" -- sleep "$2" >/dev/null 2>&1
  perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf | tee "${FOLDED:-/dev/null}" |
    inferno-flamegraph --title "$4" --width 1600 >"$3"
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

# capture_lua BATCH KEY [TID_BASE=0]: a wrk script posting BATCH product events per request to
# /api/ingest/events with KEY. Every event's uuid is its own (the thread's number, offset by
# TID_BASE so that several wrk processes differ, then the thread's event count), so nothing is
# deduplicated away; each thread's uuids ascend, as time-ordered (version 7) uuids from an SDK
# do and as the raw-insert reference's do.
capture_lua() {
  cat <<LUA
local batch = $1
local counter = 0
local thread_id = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", ${3:-0} + thread_id)
end
function request()
  counter = counter + 1
  local parts = {}
  for i = 1, batch do
    parts[i] = string.format(
      '{"event":"page_view","user_id":"u%d","uuid":"%08x-%04x-4000-8000-%012x","properties":{"path":"/pricing","plan":"free","browser":"Chrome"}}',
      (counter * batch + i) % 5000, tid, 0, counter * batch + i)
  end
  return wrk.format("POST", "/api/ingest/events",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $2"},
    "[" .. table.concat(parts, ",") .. "]")
end
LUA
}
