"""Runs a real `liftoff serve` for the Python integration tests.

The `liftoff` fixture starts the binary ($LIFTOFF_BIN, else <repo>/target/debug/liftoff) on a
free loopback port with a fresh data directory, waits for GET /readyz, and hands back its URL
and admin token. At the end of the session it sends SIGTERM and asserts a clean exit (code 0).

Inherited LIFTOFF_* variables are dropped (the server refuses unknown ones, and a developer's
shell must not change what is under test). The server's output goes to a file; it is shown
when the server does not come up, when it does not exit cleanly, and under every failed test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REPO_DIR = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_DIR / "target" / "debug" / "liftoff"
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_CHARS = 20_000


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Liftoff:
    url: str
    admin_token: str
    log_path: Path
    process: subprocess.Popen

    def log(self, tail: int | None = None) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            return f"(server log unreadable: {e})"
        if tail is not None and len(text) > tail:
            text = "[... earlier output omitted ...]\n" + text[-tail:]
        return text or "(no output)"

    def admin(self, method: str, path: str, json=None, expect: int | None = None) -> requests.Response:
        """An admin API call; with `expect`, asserts the status code."""
        r = requests.request(
            method,
            self.url + path,
            json=json,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=10,
        )
        if expect is not None:
            assert r.status_code == expect, f"{method} {path} -> {r.status_code}: {r.text}"
        return r


_current: Liftoff | None = None


def binary() -> Path:
    """$LIFTOFF_BIN, else <repo>/target/debug/liftoff; fails the test when it is missing."""
    bin_path = Path(os.environ.get("LIFTOFF_BIN") or DEFAULT_BIN).resolve()
    if not os.access(bin_path, os.X_OK):
        pytest.fail(
            f"liftoff binary not found or not executable: {bin_path}\n"
            "Build it first (cargo build --bin liftoff) or point LIFTOFF_BIN at it.",
            pytrace=False,
        )
    return bin_path


def start(work: Path, extra_args: list[str] = (), token: str | None = None) -> Liftoff:
    """Starts `liftoff serve` on a free port with a fresh data directory under `work` and
    waits for GET /readyz; fails the test, showing the server's log, when it does not come up."""
    data_dir = Path(tempfile.mkdtemp(prefix="liftoff-py-", dir=work))
    log_path = data_dir.with_suffix(".log")
    listen = f"127.0.0.1:{free_port()}"
    url = f"http://{listen}"
    token = token or secrets.token_hex(32)

    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFTOFF_")}
    env.update(
        RUST_BACKTRACE=os.environ.get("RUST_BACKTRACE", "1"),
        NO_COLOR="1",
        LIFTOFF_ADMIN_TOKEN=token,
        LIFTOFF_ADMIN_PASSWORD=secrets.token_urlsafe(18),
    )
    args = [str(binary()), "serve", "--data", str(data_dir), "--listen", listen, *extra_args]

    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
    server = Liftoff(url=url, admin_token=token, log_path=log_path, process=proc)

    def give_up(why: str):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pytest.fail(
            f"liftoff {why}\n----- server log ({' '.join(args)}) -----\n{server.log()}\n----- end of server log -----",
            pytrace=False,
        )

    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no attempt yet"
    while True:
        code = proc.poll()
        if code is not None:
            give_up(f"exited before it was ready (exit code {code})")
        try:
            r = requests.get(url + "/readyz", timeout=2)
            if r.status_code == 200:
                return server
            last = f"GET /readyz -> {r.status_code}"
        except requests.RequestException as e:
            last = f"GET /readyz: {e.__class__.__name__}"
        if time.monotonic() > deadline:
            give_up(f"was not ready within {READY_TIMEOUT_S:.0f} s (last: {last})")
        time.sleep(0.1)


def stop(server: Liftoff) -> None:
    """SIGTERM, then asserts a clean exit (code 0) within the time allowed."""
    proc = server.process
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(
                f"liftoff did not exit within {STOP_TIMEOUT_S:.0f} s of SIGTERM (killed)\n"
                f"----- server log -----\n{server.log(LOG_TAIL_CHARS)}\n----- end of server log -----",
                pytrace=False,
            )
    assert proc.returncode == 0, (
        f"liftoff exited with code {proc.returncode} after SIGTERM (want 0)\n"
        f"----- server log -----\n{server.log(LOG_TAIL_CHARS)}\n----- end of server log -----"
    )


@pytest.fixture(scope="session")
def liftoff(tmp_path_factory: pytest.TempPathFactory):
    global _current
    work = tmp_path_factory.mktemp("liftoff")
    server = start(work)
    _current = server
    try:
        yield server
    finally:
        _current = None
        stop(server)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def ingest_token(liftoff: Liftoff) -> str:
    """An `ingest` API key: what an app's OpenFeature SDK authenticates with."""
    r = liftoff.admin("POST", "/api/keys", {"name": "python-ofrep-test", "scope": "ingest"}, expect=201)
    return r.json()["token"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _current is not None and "liftoff" in getattr(item, "fixturenames", ()):
        report.sections.append(("liftoff server log", _current.log(LOG_TAIL_CHARS)))
