#!/usr/bin/env python3
"""Exact DuckDB answers for the analytics parity test (crates/liftoff-analytics/tests).

Runs the reference queries of bench/kit/duckdb_baseline.py (funnel, DAU, retention triangle,
top events) plus an exact form of the sessions query (integer sums instead of rounded
averages) on DIR/events.parquet and writes DIR/expected.json.

  python3 expected.py DIR
"""
import json
import os
import sys

import duckdb

sys.path.insert(0, os.environ["BENCH_KIT"])
from duckdb_baseline import Q_DAU, Q_FUNNEL, Q_RETENTION  # noqa: E402

Q_TOP_ALL = "SELECT event, count(*) AS n FROM events GROUP BY event ORDER BY n DESC, event"

Q_SESSIONS_EXACT = """
WITH x AS (SELECT user_id, ts, ts - lag(ts) OVER (PARTITION BY user_id ORDER BY ts) AS gap
           FROM events),
y AS (SELECT user_id, ts,
             sum(CASE WHEN gap IS NULL OR gap > 1800000 THEN 1 ELSE 0 END)
               OVER (PARTITION BY user_id ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sn
      FROM x),
z AS (SELECT user_id, sn, count(*) AS n, max(ts) - min(ts) AS dur FROM y GROUP BY user_id, sn)
SELECT count(*), sum(dur)::BIGINT, count(*) FILTER (n = 1) FROM z"""


def main():
    data = sys.argv[1]
    con = duckdb.connect(":memory:")
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet('{os.path.join(data, 'events.parquet')}')")
    out = {
        "events": con.execute("SELECT count(*) FROM events").fetchone()[0],
        "funnel": list(con.execute(Q_FUNNEL).fetchone()),
        "dau": [list(r) for r in con.execute(Q_DAU).fetchall()],
        "retention_triangle": [list(r) for r in con.execute(Q_RETENTION).fetchall()],
        "top_events": [list(r) for r in con.execute(Q_TOP_ALL).fetchall()],
        "sessions": list(con.execute(Q_SESSIONS_EXACT).fetchone()),
    }
    with open(os.path.join(data, "expected.json"), "w") as f:
        json.dump(out, f)
    print(f"wrote {data}/expected.json: {out['events']:,} events, funnel {out['funnel']}, "
          f"{out['sessions'][0]:,} sessions")


if __name__ == "__main__":
    main()
