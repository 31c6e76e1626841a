# Sourced by prepare.sh and run.sh: a Python virtualenv with numpy, pyarrow and duckdb at
# target/bench-venv (created on first use); sets $PY, and $BENCH_KIT to the event generator
# and DuckDB baseline in bench/kit.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH_KIT="$root/bench/kit"
[ -f "$BENCH_KIT/gen_events.py" ] || {
  echo "error: $BENCH_KIT/gen_events.py is missing; restore bench/kit with git checkout" >&2
  exit 1
}
export BENCH_KIT
venv="${CARGO_TARGET_DIR:-$root/target}/bench-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import numpy, pyarrow, duckdb' 2>/dev/null; then
  echo "== creating $venv (numpy, pyarrow, duckdb)" >&2
  python3 -m venv "$venv" || { echo "error: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install -q --disable-pip-version-check numpy pyarrow duckdb \
    || { echo "error: cannot pip install numpy pyarrow duckdb into $venv" >&2; exit 1; }
fi
PY="$venv/bin/python"
