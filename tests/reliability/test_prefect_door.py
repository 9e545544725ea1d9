"""Prefect's own door: loopback by default; beyond it only with a password, CSRF on, CORS narrowed.

Prefect's open-source server has no users: whoever reaches its API can read every run and cancel
or delete it. `rujukan serve` therefore binds it to 127.0.0.1, refuses another address without
RUJUKAN_PREFECT_API_AUTH_STRING, and with it turns on Prefect's CSRF protection and narrows CORS.
One `rujukan serve` is started, listening on 0.0.0.0 with the password, and probed with httpx.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from models.settings import PROJECT_ROOT, Settings
from tests.network import free_port

pytestmark = [pytest.mark.prefect]

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
AUTH = ("manager", "door-test-s3cret")


def listening(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on at `port` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUJUKAN_"))}
    env.update(
        RUJUKAN_HOME=str(home),
        RUJUKAN_SECRET_KEY="door-test-key",
        RUJUKAN_WEB_PORT=str(free_port()),
        RUJUKAN_MAILBOX_PORT=str(free_port()),
        **extra,
    )
    return env


def test_the_default_bind_address_is_loopback():
    assert Settings.model_fields["prefect_host"].default == "127.0.0.1"
    assert Settings.model_fields["prefect_api_auth_string"].default is None


def test_listening_beyond_loopback_without_a_password_is_refused(tmp_path: Path):
    port = free_port()
    started = time.monotonic()
    result = subprocess.run(
        [RUJUKAN, "serve"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(tmp_path / "var", RUJUKAN_PREFECT_HOST="0.0.0.0", RUJUKAN_PREFECT_PORT=str(port)),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "RUJUKAN_PREFECT_HOST=0.0.0.0" in result.stderr
    assert "RUJUKAN_PREFECT_API_AUTH_STRING" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not listening(port) and not (tmp_path / "var" / "prefect" / "prefect.db").exists()
    print(f"\nrefused in {time.monotonic() - started:.1f} s: {result.stderr.strip()}")


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory):
    """`rujukan serve` told to listen on 0.0.0.0, with the auth string; stopped at the end."""
    home = tmp_path_factory.mktemp("door") / "var"
    port = free_port()
    env = _env(
        home,
        RUJUKAN_PREFECT_HOST="0.0.0.0",
        RUJUKAN_PREFECT_PORT=str(port),
        RUJUKAN_PREFECT_API_AUTH_STRING=":".join(AUTH),
    )
    out = home.parent / "serve.out"
    started = time.monotonic()
    process = subprocess.Popen(
        [RUJUKAN, "serve"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while "Ctrl-C stops everything" not in out.read_text(errors="replace"):
            assert process.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        print(f"\nserve up on 0.0.0.0:{port} in {time.monotonic() - started:.0f} s")
        yield port, out
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=90)


@pytest.mark.slow
def test_an_exposed_server_asks_for_the_password_checks_csrf_and_narrows_cors(exposed):
    port, out = exposed
    api = f"http://127.0.0.1:{port}/api"
    assert "0.0.0.0" in listening(port)  # it did what it was told, with the door locked

    # No password, or a wrong one: 401, whatever is asked (only Prefect's GET /health and
    # /ready answer anyone, by Prefect's design, and they say nothing but "up").
    assert httpx.get(f"{api}/admin/version", timeout=10).status_code == 401
    assert httpx.get(f"{api}/csrf-token", params={"client": "x"}, timeout=10).status_code == 401
    # (a POST without a CSRF token is stopped even earlier, by the CSRF check: 403)
    assert httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).status_code in (401, 403)
    assert httpx.delete(
        f"{api}/flow_runs/{'0' * 8}-0000-0000-0000-{'0' * 12}", timeout=10
    ).status_code in (401, 403)
    assert (
        httpx.get(f"{api}/admin/version", auth=("manager", "guess"), timeout=10).status_code == 401
    )
    assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).text == "true"
    # The password opens it; serve's own runner and the referral flows got in with it too.
    assert httpx.get(f"{api}/admin/version", auth=AUTH, timeout=10).status_code == 200

    # CSRF protection is on: a state-changing call needs a token bound to its client.
    refused = httpx.post(f"{api}/flow_runs/filter", json={}, auth=AUTH, timeout=10)
    assert refused.status_code == 403 and "CSRF" in refused.text
    token = httpx.get(f"{api}/csrf-token", params={"client": "door-test"}, auth=AUTH, timeout=10)
    assert token.status_code == 200, token.text
    headers = {"Prefect-Csrf-Token": token.json()["token"], "Prefect-Csrf-Client": "door-test"}
    allowed = httpx.post(f"{api}/flow_runs/filter", json={}, auth=AUTH, headers=headers, timeout=10)
    assert allowed.status_code == 200, allowed.text
    deployments = httpx.post(
        f"{api}/deployments/filter", json={}, auth=AUTH, headers=headers, timeout=10
    )
    assert {"referral", "deadline-sweep"} <= {d["name"] for d in deployments.json()}
    wrong_client = {**headers, "Prefect-Csrf-Client": "someone-else"}
    assert (
        httpx.post(
            f"{api}/flow_runs/filter", json={}, auth=AUTH, headers=wrong_client, timeout=10
        ).status_code
        == 403
    )

    # CORS is narrowed: another site's page gets no permission to read the API.
    preflight = httpx.options(
        f"{api}/flow_runs/filter",
        timeout=10,
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers.get("access-control-allow-origin") not in ("*", "http://evil.example")
    simple = httpx.get(
        f"{api}/health", auth=AUTH, headers={"Origin": "http://evil.example"}, timeout=10
    )
    assert simple.headers.get("access-control-allow-origin") not in ("*", "http://evil.example")
    assert "Traceback" not in out.read_text(errors="replace")
