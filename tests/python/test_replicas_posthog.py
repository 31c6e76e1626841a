"""The official PostHog Python SDK against three Liftoff replicas sharing PostgreSQL.

Each user's journey is sent event by event round-robin through three SDK clients, one per
replica, so every user's funnel is split across the replicas. Every event is stored once, and
each replica's funnel equals the one the journeys make, computed here independently.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from datetime import datetime, timedelta, timezone

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


def journey(n: int) -> list[str]:
    """User n's steps: everyone visits, 7 in 10 sign up, 4 in 10 buy."""
    return STEPS[: 1 + (n % 10 >= 3) + (n % 10 >= 6)]


def test_sdk_journeys_round_robin_over_three_replicas(tmp_path):
    state_url = fresh_schema_url()
    token = secrets.token_hex(32)
    replicas = [start(tmp_path, ["--state-url", state_url], token=token) for _ in range(3)]
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
    finally:
        for r in replicas:
            stop(r)
