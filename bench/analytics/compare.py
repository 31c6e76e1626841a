#!/usr/bin/env python3
"""Markdown table of DIR/results_duckdb.json against DIR/results_liftoff.json (run.sh).

duckdb_baseline.py stores the retention triangle under the same JSON key as the retention
timing, so timings missing from the JSON are read from its printed table in DIR/duckdb.log."""
import json
import os
import sys

d = sys.argv[1]
duck = json.load(open(os.path.join(d, "results_duckdb.json")))
ours = json.load(open(os.path.join(d, "results_liftoff.json")))
log = open(os.path.join(d, "duckdb.log")).read().splitlines() if os.path.exists(os.path.join(d, "duckdb.log")) else []
for name in ["load_ndjson_gz", "load_parquet", "dau_30d", "funnel_4step_7d", "retention_triangle",
             "top10_events", "sessions_30min"]:
    if not isinstance(duck.get(name), dict):
        for line in log:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells and cells[0] == name:
                duck[name] = {"min_s": float(cells[2]), "median_s": float(cells[3])}


def t(x):
    return f"{x['min_s']:.3f} / {x['median_s']:.3f}"


print(f"DuckDB: {duck['engine']}, threads={duck['threads']}; {duck['machine']}\n")
print("| step | DuckDB min / median s | Liftoff min / median s | speed-up (median) | Liftoff result |")
print("| --- | ---: | ---: | ---: | --- |")
for name in ["funnel_4step_7d", "dau_30d", "retention_triangle", "top10_events", "sessions_30min"]:
    a, b = duck[name], ours[name]
    print(f"| {name} | {t(a)} | {t(b)} | {a['median_s'] / b['median_s']:.1f}x | {b['result']} |")
for name in ["funnel_breakdown_browser", "wau", "new_vs_returning_daily", "paths_top10", "milestones"]:
    print(f"| {name} | — | {t(ours[name])} | | {ours[name]['result']} |")
print(f"| load: DuckDB Parquet → table / Liftoff decode 30 day segments + table | {t(duck['load_parquet'])} "
      f"| {t(ours['decode_and_table_build'])} | | |")
if "load_ndjson_gz" in duck:
    a, b = duck["load_ndjson_gz"], ours["load_ndjson_gz"]
    print(f"| load NDJSON.gz (Liftoff: parse, build + encode day segments) | {t(a)} "
          f"| {t(b)} | {a['median_s'] / b['median_s']:.1f}x | {b['result']} |")
pq = os.path.getsize(os.path.join(d, "events.parquet"))
print(f"\n| memory and size | DuckDB | Liftoff |\n| --- | ---: | ---: |")
print(f"| peak RSS, whole process (MB) | {duck['peak_rss_process_mb']:.0f} | {ours['peak_rss_mb']:.0f} |")
print(f"| table in memory (MB) | {duck['table_memory_mb']:.0f} | {ours['table_heap_mb']:.0f} |")
print(f"| on disk, bytes per event | {pq / ours['events']:.2f} (Parquet, zstd) | {ours['bytes_per_event']:.2f} (segments) |")
if ours["checks_failed"]:
    print(f"\nFAILED answer checks: {ours['checks_failed']}")
