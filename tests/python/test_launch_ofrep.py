"""Launch state through the real OpenFeature SDK and OFREP provider: any app can enforce the
soft-launch cap and maintenance mode with its existing provider, no Liftoff SDK needed.

`liftoff.admitted` must agree with `GET /api/launch/user-limit` for every user (evaluating it
asks for a seat, exactly as that route does), and `liftoff.maintenance` must flip as soon as
the admin switches maintenance mode.
"""

from __future__ import annotations

import time

import pytest
import requests
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext


@pytest.fixture
def client(liftoff, ingest_token):
    api.set_provider(
        OFREPProvider(
            base_url=liftoff.url,
            headers_factory=lambda: {"Authorization": f"Bearer {ingest_token}"},
        )
    )
    yield api.get_client()
    api.shutdown()
    api.clear_providers()


def user_limit(liftoff, token: str, user: str) -> dict:
    r = requests.get(
        f"{liftoff.url}/api/launch/user-limit",
        params={"user_id": user},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_admitted_agrees_with_user_limit(liftoff, ingest_token, client):
    liftoff.admin("PATCH", "/api/launch", {"user_limit": 5, "reason": "python test"}, expect=200)
    users = [f"py-user-{i}" for i in range(8)]
    # Half ask through OFREP first, half through the route first: the answers must agree
    # whichever way a user arrived.
    for i, u in enumerate(users):
        if i % 2 == 0:
            via_flag = client.get_boolean_details("liftoff.admitted", False, EvaluationContext(targeting_key=u))
            via_route = user_limit(liftoff, ingest_token, u)
        else:
            via_route = user_limit(liftoff, ingest_token, u)
            via_flag = client.get_boolean_details("liftoff.admitted", False, EvaluationContext(targeting_key=u))
        assert via_flag.error_code is None, via_flag.error_message
        assert via_flag.value is via_route["allowed"], (u, via_flag, via_route)
    admitted = [u for u in users if user_limit(liftoff, ingest_token, u)["allowed"]]
    assert admitted == users[:5]
    # Without a targeting key there is nobody to admit: the provider reports an error and the
    # app's default stands.
    anonymous = client.get_boolean_details("liftoff.admitted", False, EvaluationContext())
    assert anonymous.value is False
    assert anonymous.error_code is not None


def test_maintenance_flips_within_a_second(liftoff, client):
    ctx = EvaluationContext(targeting_key="visitor")
    assert client.get_boolean_value("liftoff.maintenance", True, ctx) is False
    liftoff.admin(
        "PUT",
        "/api/launch/maintenance",
        {"enabled": True, "message": "Upgrading", "allow_users": ["support"]},
        expect=200,
    )
    started = time.monotonic()
    while client.get_boolean_value("liftoff.maintenance", False, ctx) is not True:
        assert time.monotonic() - started < 1.0, "maintenance did not flip within 1 s"
        time.sleep(0.05)
    allowed = EvaluationContext(targeting_key="support")
    assert client.get_boolean_value("liftoff.maintenance", True, allowed) is False
    liftoff.admin("PUT", "/api/launch/maintenance", {"enabled": False}, expect=200)
    assert client.get_boolean_value("liftoff.maintenance", True, ctx) is False
