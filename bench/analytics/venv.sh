# Sourced by prepare.sh and run.sh: a Python virtualenv with numpy, pyarrow and duckdb at
# target/bench-venv (created on first use); sets $PY, and $SHARED_BENCH to the event generator
# and DuckDB baseline in shared/bench beside the repository.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARED_BENCH="${LIFTOFF_SHARED_BENCH:-$root/../shared/bench}"
[ -f "$SHARED_BENCH/gen_events.py" ] || {
  echo "error: $SHARED_BENCH/gen_events.py is missing: the shared benchmark kit is expected in shared/bench beside the repository (or set LIFTOFF_SHARED_BENCH)" >&2
  exit 1
}
export SHARED_BENCH
venv="$root/target/bench-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import numpy, pyarrow, duckdb' 2>/dev/null; then
  echo "== creating $venv (numpy, pyarrow, duckdb)" >&2
  python3 -m venv "$venv" || { echo "error: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install -q --disable-pip-version-check numpy pyarrow duckdb \
    || { echo "error: cannot pip install numpy pyarrow duckdb into $venv" >&2; exit 1; }
fi
PY="$venv/bin/python"
