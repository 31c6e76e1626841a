"""The official PostHog Python SDK capturing to Liftoff.

`posthog.Posthog(api_key=<ingest key>, host=<liftoff>)` sends its batches to Liftoff's
PostHog-compatible `/batch/` (the SDK's default v0 capture protocol), plain and gzip-compressed.
The events, their counts and the person properties set by `$identify`, `set` and `set_once`
come back through /api/analytics/user/{id}.
"""

from __future__ import annotations

import uuid

import pytest
from posthog import Posthog


def client(liftoff, token: str, errors: list, **kwargs) -> Posthog:
    return Posthog(
        token,
        host=liftoff.url,
        capture_mode="v0",
        on_error=lambda error, batch: errors.append(error),
        max_retries=0,
        **kwargs,
    )


def activity(liftoff, user_id: str) -> dict:
    return liftoff.admin("GET", f"/api/analytics/user/{user_id}?days=1", expect=200).json()


@pytest.mark.parametrize("gzip", [False, True], ids=["json", "gzip"])
def test_sdk_events_and_person_properties_arrive(liftoff, ingest_token, gzip):
    errors: list = []
    ph = client(liftoff, ingest_token, errors, gzip=gzip)
    user = f"py-{uuid.uuid4().hex[:8]}"
    anon = f"anon-{uuid.uuid4().hex[:8]}"

    ph.capture("page_viewed", distinct_id=anon, properties={"path": "/pricing", "$set_once": {"landing": "/pricing"}})
    # The SDK has no identify() any more; this is the event posthog-js sends for it.
    ph.capture(
        "$identify",
        distinct_id=user,
        properties={"$anon_distinct_id": anon, "$set": {"email": f"{user}@example.com", "plan": "free"}},
    )
    for i in range(5):
        ph.capture("report_exported", distinct_id=user, properties={"format": "csv", "rows": i})
    ph.capture("signed_up", distinct_id=user, properties={"$session_id": "sess-py"})
    ph.set(distinct_id=user, properties={"plan": "pro"})
    ph.set_once(distinct_id=user, properties={"plan": "never", "first_plan": "pro"})
    # A retry of an event with the same uuid is stored once.
    again = str(uuid.uuid4())
    ph.capture("retried", distinct_id=user, uuid=again)
    ph.capture("retried", distinct_id=user, uuid=again)
    ph.flush()
    ph.shutdown()
    assert errors == []

    got = activity(liftoff, user)
    assert got["event_counts"] == {
        "$identify": 1,
        "report_exported": 5,
        "signed_up": 1,
        "$set": 1,
        "$set_once": 1,
        "retried": 1,
    }
    assert got["total_events"] == 10
    props = got["person"]["properties"]
    assert props["email"] == f"{user}@example.com"
    assert props["plan"] == "pro", props
    assert props["first_plan"] == "pro"
    assert props["landing"] == "/pricing", "merged from the anonymous person by $identify"
    assert any(s["session_id"] == "sess-py" and s["events"] == 1 for s in got["sessions"])
    exported = [e for e in got["recent_events"] if e["event"] == "report_exported"]
    assert sorted(e["properties"]["rows"] for e in exported) == [0, 1, 2, 3, 4]
    assert all(e["properties"]["format"] == "csv" for e in exported)
    assert activity(liftoff, anon)["event_counts"] == {"page_viewed": 1}


def test_sdk_with_a_key_liftoff_does_not_know_is_refused(liftoff):
    errors: list = []
    ph = client(liftoff, "phc_not_a_liftoff_key", errors)
    ph.capture("nope", distinct_id="stranger")
    ph.flush()
    ph.shutdown()
    assert len(errors) == 1, errors
    assert "401" in str(errors[0]) or "api_key" in str(errors[0]), errors
    assert activity(liftoff, "stranger")["total_events"] == 0


def test_sdk_feature_flags_come_from_liftoff(liftoff, ingest_token):
    liftoff.admin(
        "POST",
        "/api/feature-flags",
        {"flag_id": "py-pro-search", "strategy": "user_attribute", "attributes": {"plan": ["pro"]}},
        expect=201,
    )
    errors: list = []
    ph = client(liftoff, ingest_token, errors)
    # One /flags/?v=2 request per user, answered by Liftoff's evaluator.
    pro = ph.evaluate_flags("ada", person_properties={"plan": "pro"})
    free = ph.evaluate_flags("bob", person_properties={"plan": "free"})
    assert pro.get_flag("py-pro-search", send_feature_flag_events=False) is True
    assert free.get_flag("py-pro-search", send_feature_flag_events=False) is False
    ph.shutdown()
    assert errors == []
