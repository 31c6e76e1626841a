#!/usr/bin/env bash
# Full-size benchmark: the analytics engine against DuckDB on the 10M-event data set of bench/kit/gen_events.py,
# same machine, same run. Prints a markdown table for BENCHMARKS.md.
#
#   bench/analytics/run.sh [DATA_DIR=target/bench-data]      RUNS=3 by default
#
# Generates the data on first use (~1 min, ~210 MB), then runs bench/kit/duckdb_baseline.py with
# 2 threads and the crate's bench_events example, which also checks the answers (expected
# figures of the default data and DuckDB's results_duckdb.json) and exits non-zero on a
# mismatch.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/analytics
data="${1:-target/bench-data}"
runs="${RUNS:-3}"
source "$here/venv.sh"

if [ -f "$data/events.ndjson.gz" ] && [ -f "$data/events.parquet" ]; then
  echo "== reusing $data"
else
  echo "== generating the 10M-event data set in $data"
  "$PY" "$BENCH_KIT/gen_events.py" --out "$data"
fi

echo "== DuckDB ($runs runs, 2 threads)"
"$PY" "$BENCH_KIT/duckdb_baseline.py" --data "$data" --runs "$runs" --threads 2 | tee "$data/duckdb.log"

echo "== liftoff-analytics ($runs runs)"
cargo build -q --release -p liftoff-analytics --example bench_events
target/release/examples/bench_events "$data" --runs "$runs"

echo "== comparison"
"$PY" "$here/compare.py" "$data"
