#!/usr/bin/env bash
# Liftoff startup benchmark.
#
# Measures, for `liftoff serve` on a fresh, empty data directory:
#   (a) time from process spawn to the first HTTP 200 on GET /readyz, over N runs
#       (min / median / max, in ms);
#   (b) idle resident memory (VmRSS from /proc/PID/status, MiB) RSS_WAIT seconds
#       after ready, plus the peak so far (VmHWM).
# Each run gets its own temp data dir and a free 127.0.0.1 port, and is stopped with
# SIGTERM; the server must exit with status 0 (otherwise the script fails and shows
# that run's output). Prints a markdown table.
#
# Usage: bench/startup.sh [BINARY] [N]
#   BINARY  default: <repo>/target/release/liftoff   (build: cargo build --release -p liftoff)
#   N       number of measured runs, default 20 (or env N)
# Environment:
#   WARMUP=1          unmeasured runs first (page cache, dynamic loader), default 1
#   RSS_WAIT=2        seconds to wait after ready before reading VmRSS
#   READY_TIMEOUT=15  seconds a run may take to become ready
#   STOP_TIMEOUT=10   seconds a server may take to exit after SIGTERM
#   POLL_INTERVAL=0.005  sleep between /readyz probes (seconds)
# Inherited LIFTOFF_* variables are cleared so the numbers do not depend on the
# caller's shell; only LIFTOFF_ADMIN_TOKEN (random per run) is set.
#
# Tools: bash, curl, date (GNU, for %N), awk, sort, od. No hyperfine.
# Resolution: each probe is one curl process (a few ms), so "ready" is seen at most
# one probe + POLL_INTERVAL late; the table reports the cost of one probe against an
# already-ready server ("probe cost") so that bias is visible.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

BIN=${1:-$REPO_DIR/target/release/liftoff}
RUNS=${2:-${N:-20}}
WARMUP=${WARMUP:-1}
RSS_WAIT=${RSS_WAIT:-2}
READY_TIMEOUT=${READY_TIMEOUT:-15}
STOP_TIMEOUT=${STOP_TIMEOUT:-10}
POLL_INTERVAL=${POLL_INTERVAL:-0.005}

die() { echo "startup.sh: $*" >&2; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$RUNS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer, got '$WARMUP'"
[[ -x $BIN ]] || die "binary not found or not executable: $BIN (build it: cargo build --release -p liftoff)"
for tool in curl date awk sort od; do
  command -v "$tool" >/dev/null || die "needs $tool"
done
[[ $(date +%N) =~ ^[0-9]{9}$ ]] || die "needs GNU date (+%N)"

BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# Hermetic environment for the server.
while IFS='=' read -r name _; do
  [[ $name == LIFTOFF_* ]] && unset "$name"
done < <(env)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/liftoff-bench.XXXXXX")
SERVER_PID=

cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }

random_hex() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# A port on 127.0.0.1 with no listener, below the usual ephemeral range so that
# outgoing connections do not take it meanwhile.
free_port() {
  local port tries=0
  while ((tries++ < 200)); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true; }

show_log() {
  echo "----- server output ($1) -----" >&2
  cat "$1" >&2 || true
  echo "----- end of server output -----" >&2
}

# stats FILE -> "min median max" (numbers, one per line in FILE)
stats() {
  sort -g "$1" | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "- - -"; exit }
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.1f %.1f %.1f\n", v[1], med, v[NR]
    }'
}

READY_MS=$WORK/ready_ms
RSS_MIB=$WORK/rss_mib
HWM_MIB=$WORK/hwm_mib
PROBE_MS=$WORK/probe_ms
STOP_MS=$WORK/stop_ms
: >"$READY_MS"; : >"$RSS_MIB"; : >"$HWM_MIB"; : >"$PROBE_MS"; : >"$STOP_MS"

# run LABEL MEASURE(0|1)
run_once() {
  local label=$1 measure=$2
  local data port url log t0 t1 code pid deadline status kb hwm p0 p1 s0 s1
  data=$(mktemp -d "$WORK/data.XXXXXX")
  log=$WORK/$label.log
  port=$(free_port)
  url=http://127.0.0.1:$port

  t0=$(now_ns)
  LIFTOFF_ADMIN_TOKEN=$(random_hex) \
    "$BIN" serve --data "$data" --listen "127.0.0.1:$port" >"$log" 2>&1 &
  pid=$!
  SERVER_PID=$pid

  deadline=$((t0 + READY_TIMEOUT * 1000000000))
  while :; do
    code=$(http_code "$url/readyz")
    if [[ $code == 200 ]]; then
      t1=$(now_ns)
      break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      status=0
      wait "$pid" || status=$?
      SERVER_PID=
      show_log "$log"
      die "$label: server exited with status $status before /readyz answered 200"
    fi
    if (($(now_ns) > deadline)); then
      show_log "$log"
      die "$label: /readyz not 200 within ${READY_TIMEOUT}s (last answer: ${code:-none})"
    fi
    sleep "$POLL_INTERVAL"
  done

  if ((measure)); then
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >>"$READY_MS"

    # Cost of one probe against a ready server: the resolution of the number above.
    p0=$(now_ns)
    code=$(http_code "$url/readyz")
    p1=$(now_ns)
    [[ $code == 200 ]] || { show_log "$log"; die "$label: /readyz went from 200 to ${code:-none}"; }
    awk -v a="$p0" -v b="$p1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >>"$PROBE_MS"

    sleep "$RSS_WAIT"
    kill -0 "$pid" 2>/dev/null || { show_log "$log"; die "$label: server died while idle"; }
    kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
    [[ -n $kb && -n $hwm ]] || die "$label: could not read /proc/$pid/status"
    awk -v k="$kb" 'BEGIN { printf "%.2f\n", k / 1024 }' >>"$RSS_MIB"
    awk -v k="$hwm" 'BEGIN { printf "%.2f\n", k / 1024 }' >>"$HWM_MIB"
  fi

  s0=$(now_ns)
  kill -TERM "$pid"
  deadline=$((s0 + STOP_TIMEOUT * 1000000000))
  while kill -0 "$pid" 2>/dev/null; do
    # A zombie still answers kill -0 until reaped; a zombie has exited, so stop waiting.
    [[ $(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) == Z ]] && break
    if (($(now_ns) > deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      SERVER_PID=
      show_log "$log"
      die "$label: server still running ${STOP_TIMEOUT}s after SIGTERM (killed)"
    fi
    sleep 0.01
  done
  status=0
  wait "$pid" || status=$?
  s1=$(now_ns)
  SERVER_PID=
  if ((status != 0)); then
    show_log "$log"
    die "$label: server exited with status $status after SIGTERM (expected 0)"
  fi
  if ((measure)); then
    awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >>"$STOP_MS"
  fi
  rm -rf "$data"
}

for ((i = 1; i <= WARMUP; i++)); do
  run_once "warmup-$i" 0
done
for ((i = 1; i <= RUNS; i++)); do
  printf '\rrun %d/%d' "$i" "$RUNS" >&2
  run_once "run-$i" 1
done
printf '\r\033[K' >&2

read -r r_min r_med r_max < <(stats "$READY_MS")
read -r m_min m_med m_max < <(stats "$RSS_MIB")
read -r h_min h_med h_max < <(stats "$HWM_MIB")
read -r p_min p_med p_max < <(stats "$PROBE_MS")
read -r s_min s_med s_max < <(stats "$STOP_MS")

version=$(timeout 5 "$BIN" --version 2>/dev/null | head -n1 || true)
rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $rev != unknown ]] && ! git -C "$REPO_DIR" diff --quiet HEAD 2>/dev/null; then rev="$rev (dirty)"; fi
size_mib=$(awk -v b="$(stat -c %s "$BIN")" 'BEGIN { printf "%.1f", b / 1048576 }')
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)

cat <<EOF
## Liftoff startup

- binary: \`$BIN\` (${size_mib} MiB${version:+, $version})
- commit: $rev
- machine: $(nproc) CPU${cpu:+, $cpu}; $(uname -sr)
- runs: $RUNS measured (+$WARMUP warm-up), fresh data dir each, LIFTOFF_ADMIN_TOKEN set
- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)

| metric | min | median | max |
| --- | ---: | ---: | ---: |
| spawn → first 200 on /readyz (ms) | $r_min | $r_med | $r_max |
| idle RSS ${RSS_WAIT} s after ready (MiB) | $m_min | $m_med | $m_max |
| peak RSS so far, VmHWM (MiB) | $h_min | $h_med | $h_max |
| SIGTERM → exit 0 (ms) | $s_min | $s_med | $s_max |
| probe cost: one curl of /readyz when ready (ms) | $p_min | $p_med | $p_max |
EOF
