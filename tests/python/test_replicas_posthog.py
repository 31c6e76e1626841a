"""The official PostHog Python SDK against three Liftoff replicas sharing PostgreSQL, with
events in PostgreSQL and in ClickHouse.

Each user's journey is sent event by event round-robin through three SDK clients, one per
replica, so every user's funnel is split across the replicas. Every event is stored once, and
each replica's funnel equals the one the journeys make, computed here independently, and (with
ClickHouse) ClickHouse's own windowFunnel over the stored rows.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from datetime import datetime, timedelta, timezone

import urllib.request

import pytest
from posthog import Posthog

from conftest import start, stop

STEPS = ["visit", "signup", "buy"]


def fresh_schema_url() -> str:
    """A new, empty schema on the test PostgreSQL ($LIFTOFF_TEST_DATABASE_URL, else the local
    server), as a URL whose connections use it."""
    base = os.environ.get("LIFTOFF_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    schema = f"liftoff_py_{secrets.token_hex(8)}"
    subprocess.run(["psql", base, "-qc", f"CREATE SCHEMA {schema}"], check=True)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def clickhouse_base() -> str:
    """The test ClickHouse server's HTTP address ($LIFTOFF_TEST_CLICKHOUSE_URL, where
    scripts/test starts one)."""
    return os.environ.get("LIFTOFF_TEST_CLICKHOUSE_URL", "http://127.0.0.1:18123").rstrip("/")


def clickhouse(sql: str) -> str:
    req = urllib.request.Request(clickhouse_base() + "/", data=sql.encode())
    with urllib.request.urlopen(req, timeout=30) as res:
        return res.read().decode()


def journey(n: int) -> list[str]:
    """User n's steps: everyone visits, 7 in 10 sign up, 4 in 10 buy."""
    return STEPS[: 1 + (n % 10 >= 3) + (n % 10 >= 6)]


@pytest.mark.parametrize("events", ["postgres", "clickhouse"])
def test_sdk_journeys_round_robin_over_three_replicas(tmp_path, events):
    state_url = fresh_schema_url()
    token = secrets.token_hex(32)
    args = ["--state-url", state_url]
    database = f"liftoff_py_{secrets.token_hex(8)}"
    if events == "clickhouse":
        args += ["--events-url", f"{clickhouse_base()}/{database}"]
    replicas = [start(tmp_path, args, token=token) for _ in range(3)]
    try:
        key = replicas[0].admin("POST", "/api/keys", {"name": "sdk", "scope": "ingest"}, expect=201).json()["token"]
        errors: list = []
        clients = [
            Posthog(key, host=r.url, capture_mode="v0", on_error=lambda e, b: errors.append(e), flush_at=50)
            for r in replicas
        ]
        users = 300
        start_at = datetime.now(timezone.utc) - timedelta(hours=2)
        sent = 0
        for n in range(users):
            for i, step in enumerate(journey(n)):
                clients[sent % 3].capture(
                    step, distinct_id=f"py-user-{n}", timestamp=start_at + timedelta(minutes=n % 60 + i)
                )
                sent += 1
        for c in clients:
            c.flush()
            c.shutdown()
        assert errors == []

        want = [sum(1 for n in range(users) if len(journey(n)) > s) for s in range(3)]
        assert want == [300, 210, 120]
        for r in replicas:
            deadline = time.monotonic() + 20
            while True:
                f = r.admin("POST", "/api/analytics/funnel", {"funnel_steps": STEPS, "days": 1}, expect=200).json()
                got = [s["users"] for s in f["analysis"]]
                if got == want:
                    break
                assert time.monotonic() < deadline, f"{r.url}: funnel {got}, want {want}"
                time.sleep(0.25)
        exported = r.admin("GET", "/api/analytics/export?format=ndjson", expect=200).text.splitlines()
        assert len(exported) == sent
        if events == "clickhouse":
            # ClickHouse's own funnel over the rows Liftoff stored (steps are a minute apart,
            # so whole seconds suffice).
            levels = clickhouse(
                "SELECT level, count() FROM (SELECT user_id, windowFunnel(86400)"
                "(toDateTime(intDiv(ts, 1000)), event = 'visit', event = 'signup', event = 'buy') AS level "
                f"FROM {database}.events FINAL GROUP BY user_id) GROUP BY level FORMAT TSV"
            )
            by_level = {int(a): int(b) for a, b in (line.split("\t") for line in levels.splitlines())}
            assert [sum(n for lv, n in by_level.items() if lv > s) for s in range(3)] == want
            assert int(clickhouse(f"SELECT uniqExact(uuid) FROM {database}.events")) == sent
    finally:
        for r in replicas:
            stop(r)
