"""The real OpenFeature Python SDK, with the real OFREP provider, against a running Liftoff.

Flags are made through the admin API; every evaluation goes SDK -> OFREPProvider -> HTTP ->
`POST /ofrep/v1/evaluate/flags/{key}` with an `ingest` key, so these tests check what an app
using OpenFeature sees: values, reasons, variants and error codes.
"""

from __future__ import annotations

import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

FLAGS = [
    {"flag_id": "dark-mode", "strategy": "user_list", "user_whitelist": ["ada"]},
    {"flag_id": "checkout", "strategy": "percentage", "percentage": 50},
    {"flag_id": "theme", "variants": [{"name": "ocean", "weight": 1}]},
    {"flag_id": "banner", "variants": [{"name": "a", "weight": 1, "payload": "Hello"}]},
    {"flag_id": "limits", "variants": [{"name": "x", "weight": 1, "payload": {"max": 5}}]},
    {"flag_id": "kill-me", "strategy": "user_list", "user_whitelist": ["ada"]},
]


def user(key: str) -> EvaluationContext:
    return EvaluationContext(targeting_key=key)


@pytest.fixture(scope="module")
def flags(liftoff):
    for body in FLAGS:
        liftoff.admin("POST", "/api/feature-flags", body, expect=201)
    return {f["flag_id"] for f in FLAGS}


def make_provider(liftoff, ingest_token: str) -> OFREPProvider:
    # openfeature-provider-ofrep 0.3.0: OFREPProvider(base_url, *, headers_factory=None, timeout=5.0).
    # The base URL is the server root; the provider appends /ofrep/v1/.
    return OFREPProvider(
        base_url=liftoff.url,
        headers_factory=lambda: {"Authorization": f"Bearer {ingest_token}"},
    )


@pytest.fixture
def client(liftoff, ingest_token, flags):
    """An OpenFeature client backed by a fresh OFREP provider for each test."""
    api.set_provider(make_provider(liftoff, ingest_token))
    yield api.get_client()
    api.shutdown()
    api.clear_providers()


def test_boolean_flag_on_for_listed_user_only(client):
    ada = client.get_boolean_details("dark-mode", False, user("ada"))
    assert ada.error_code is None, ada.error_message
    assert ada.value is True
    assert ada.reason == Reason.TARGETING_MATCH
    assert ada.variant == "on"

    bob = client.get_boolean_details("dark-mode", True, user("bob"))
    assert bob.error_code is None, bob.error_message
    assert bob.value is False  # the server's answer, not the default (True) passed in
    assert bob.reason == Reason.DEFAULT
    assert bob.variant == "off"

    assert client.get_boolean_value("dark-mode", False, user("ada")) is True
    assert client.get_boolean_value("dark-mode", True, user("bob")) is False


def test_string_flag_value_is_variant_name(client):
    d = client.get_string_details("theme", "default", user("ada"))
    assert d.error_code is None, d.error_message
    assert d.value == "ocean"
    assert d.variant == "ocean"
    assert d.reason == Reason.STATIC


def test_string_flag_value_is_variant_payload(client):
    d = client.get_string_details("banner", "default", user("bob"))
    assert d.error_code is None, d.error_message
    assert d.value == "Hello"
    assert d.variant == "a"
    assert d.reason == Reason.STATIC
    assert client.get_string_value("banner", "default", user("someone-else")) == "Hello"


def test_object_flag_value_is_json_payload(client):
    d = client.get_object_details("limits", {"max": 0}, user("ada"))
    assert d.error_code is None, d.error_message
    assert d.value == {"max": 5}
    assert d.variant == "x"
    assert d.reason == Reason.STATIC


def test_type_mismatch_returns_default(client):
    # A boolean flag read as a string: the SDK must fall back to the default and say why.
    d = client.get_string_details("dark-mode", "fallback", user("ada"))
    assert d.value == "fallback"
    assert d.error_code == ErrorCode.TYPE_MISMATCH
    assert d.reason == Reason.ERROR


def test_unknown_flag_returns_default_with_flag_not_found(client):
    d = client.get_boolean_details("no-such-flag", True, user("ada"))
    assert d.value is True
    assert d.error_code == ErrorCode.FLAG_NOT_FOUND
    assert d.reason == Reason.ERROR
    assert "no-such-flag" in (d.error_message or "")

    s = client.get_string_details("no-such-flag", "fallback", user("ada"))
    assert s.value == "fallback"
    assert s.error_code == ErrorCode.FLAG_NOT_FOUND


def test_kill_switch_turns_flag_off_on_next_evaluation(liftoff, ingest_token, client):
    before = client.get_boolean_details("kill-me", False, user("ada"))
    assert (before.value, before.reason, before.error_code) == (True, Reason.TARGETING_MATCH, None)

    r = liftoff.admin("PATCH", "/api/feature-flags/kill-me", {"enabled": False}, expect=200)
    assert r.json()["enabled"] is False

    # The OFREP provider 0.3.0 keeps no cache (each evaluation is one POST), so the same
    # client must see the change at once...
    after = client.get_boolean_details("kill-me", True, user("ada"))
    assert after.error_code is None, after.error_message
    assert after.value is False
    assert after.reason == Reason.DISABLED

    # ...and so must a brand-new provider, which has no state at all.
    api.set_provider(make_provider(liftoff, ingest_token))
    fresh = api.get_client().get_boolean_details("kill-me", True, user("ada"))
    assert (fresh.value, fresh.reason, fresh.error_code) == (False, Reason.DISABLED, None)


def test_percentage_rollout_share_and_stickiness(client):
    users = [f"user-{i}" for i in range(200)]
    first = {}
    for u in users:
        d = client.get_boolean_details("checkout", False, user(u))
        assert d.error_code is None, f"{u}: {d.error_code} {d.error_message}"
        assert isinstance(d.value, bool)
        # On: the user fell in the rollout; off: the flag's default answer.
        assert d.reason == (Reason.TARGETING_MATCH if d.value else Reason.DEFAULT), (u, d)
        first[u] = d.value

    on = sum(first.values())
    assert 70 <= on <= 130, f"{on}/200 users got a 50% flag (want 35-65%)"

    # The same user always gets the same answer.
    for u in users[:50]:
        for _ in range(3):
            assert client.get_boolean_value("checkout", not first[u], user(u)) is first[u], u
