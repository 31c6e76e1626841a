"""A client generated from the running server's /api/openapi.json by openapi-python-client
builds, imports and calls five endpoints, parsing each answer with the generated models: the
document is true enough for a generator, not only for a reader."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from conftest import Liftoff

PACKAGE = "liftoff_generated_client"


@pytest.fixture(scope="module")
def client_module(liftoff: Liftoff, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("generated-client")
    doc = requests.get(liftoff.url + "/api/openapi.json", timeout=10)
    assert doc.status_code == 200
    (work / "openapi.json").write_bytes(doc.content)
    # No post hooks: the generator would otherwise look for ruff to format its output.
    (work / "config.json").write_text(json.dumps({"post_hooks": []}))
    generator = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(work / "openapi.json"),
            "--output-path",
            str(work / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(work / "config.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"openapi-python-client failed:\n{done.stdout}\n{done.stderr}"
    # Only the two OTLP operations (protobuf bodies) may be left out of the client.
    skipped = [line for line in done.stdout.splitlines() if "will not be generated" in line]
    assert all("/v1/" in line for line in skipped), "\n".join(skipped)
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_generated_client_calls_five_endpoints(liftoff: Liftoff, client_module):
    api = importlib.import_module(PACKAGE + ".api")
    models = importlib.import_module(PACKAGE + ".models")
    healthz = importlib.import_module(PACKAGE + ".api.health.healthz")
    create_flag = importlib.import_module(PACKAGE + ".api.flags.create_flag")
    list_flags = importlib.import_module(PACKAGE + ".api.flags.list_flags")
    active_users = importlib.import_module(PACKAGE + ".api.analytics.active_users")
    summary = importlib.import_module(PACKAGE + ".api.monitoring.summary")
    assert api is not None

    public = client_module.Client(base_url=liftoff.url, raise_on_unexpected_status=True)
    client = client_module.AuthenticatedClient(
        base_url=liftoff.url, token=liftoff.admin_token, raise_on_unexpected_status=True
    )

    # 1. Public health.
    r = healthz.sync_detailed(client=public)
    assert r.status_code == 200
    assert r.parsed.status == "ok", r.parsed

    # 2. Create a flag with the generated model.
    r = create_flag.sync_detailed(
        client=client,
        body=models.NewFlag(flag_id="generated-client-flag", description="made by a generated client", percentage=25.0),
    )
    assert r.status_code == 201, r.content
    assert isinstance(r.parsed, models.Flag)
    assert r.parsed.flag_id == "generated-client-flag"
    assert r.parsed.percentage == 25.0

    # 3. List flags: the new one is there, parsed as FlagView.
    r = list_flags.sync_detailed(client=client)
    assert r.status_code == 200, r.content
    views = {f.flag_id: f for f in r.parsed}
    assert "generated-client-flag" in views
    assert isinstance(views["generated-client-flag"], models.FlagView)

    # 4. Analytics: active users over the last 30 minutes.
    r = active_users.sync_detailed(client=client, minutes=30)
    assert r.status_code == 200, r.content
    assert isinstance(r.parsed, models.ActiveUsersReport)
    assert r.parsed.minutes == 30
    assert r.parsed.active_users >= 0

    # 5. Monitoring summary; a query parameter out of its documented pattern is a Problem.
    r = summary.sync_detailed(client=client, window="1h")
    assert r.status_code == 200, r.content
    assert isinstance(r.parsed, models.Summary)
    assert r.parsed.uptime_seconds >= 0
    bad = client_module.AuthenticatedClient(base_url=liftoff.url, token=liftoff.admin_token)
    r = summary.sync_detailed(client=bad, window="not-a-window")
    assert r.status_code == 400, r.content
    assert isinstance(r.parsed, models.Problem)
    assert r.parsed.status == 400
