"""The Prefect server of a Rujukan home: where it is, whether it answers, how to start it."""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.errors import BadInput
from models.settings import PRIVATE_UMASK, Settings, make_private_dir, open_private

# How many sweep intervals ahead Prefect's scheduler makes runs (at least two runs).
SCHEDULED_AHEAD_INTERVALS = 3
# glibc's malloc arenas per process: by default up to 8 a core, one more for each thread that
# allocates at once, each holding freed memory of its own. Two measured 4 to 8 MiB less resident
# memory across serve's processes (bench row 8), the same CPU.
MALLOC_ARENAS = 2
M_ARENA_MAX = -8  # mallopt(3)


def limit_malloc_arenas() -> None:
    """This process's malloc keeps to MALLOC_ARENAS arenas, as MALLOC_ARENA_MAX does for the
    processes it starts: glibc reads that variable only when a process starts, and mallopt(3)
    sets the same limit now, for the threads started afterwards. Nothing outside glibc."""
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):  # no mallopt: not glibc (macOS, Windows)
        pass


def prefect_home(settings: Settings) -> Path:
    """PREFECT_HOME of this Rujukan home: Prefect's database, logs and profiles."""
    return (settings.home / "prefect").resolve()


def serving_file(settings: Settings) -> Path:
    """Written by `rujukan serve` while it runs: tells other processes where its Prefect API is."""
    return prefect_home(settings) / "serving.json"


def own_api_url(settings: Settings) -> str:
    """The API URL of the server `rujukan serve` starts for these settings."""
    host = settings.prefect_host
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{settings.prefect_port}/api"


def serving(settings: Settings) -> dict | None:
    """What the `rujukan serve` of this home wrote about itself, if it runs; else None."""
    try:
        data = json.loads(serving_file(settings).read_text())
        os.kill(int(data["pid"]), 0)  # a marker left by a killed serve points at nothing
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data


def api_url(settings: Settings) -> str | None:
    """The Prefect API to use: PREFECT_API_URL if the operator set it, else a running serve's."""
    if url := os.environ.get("PREFECT_API_URL"):
        return url
    data = serving(settings)
    return str(data["api_url"]) if data and "api_url" in data else None


def _auth(settings: Settings) -> tuple[str, str] | None:
    if settings.prefect_api_auth_string is None:
        return None
    user, _, password = settings.prefect_api_auth_string.get_secret_value().partition(":")
    return user, password


def is_healthy(url: str, settings: Settings, timeout: float = 0.5) -> bool:
    """True if the Prefect API at `url` answers its health check within `timeout` seconds."""
    # httpx loads here, not with this module: a command with no Prefect configured never asks.
    import httpx  # noqa: PLC0415

    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout, auth=_auth(settings))
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def reachable_api(settings: Settings) -> str | None:
    """The Prefect API URL if one is configured and answers now, else None (never starts one)."""
    url = api_url(settings)
    return url if url and is_healthy(url, settings) else None


@contextmanager
def prefect_at(url: str, settings: Settings) -> Iterator[None]:
    """Point Prefect's client, flows and events at `url` meanwhile (never an ephemeral server)."""
    # Prefect loads here, not with this module: the CLI imports it to check Prefect's health.
    from prefect.settings import (  # noqa: PLC0415
        PREFECT_API_AUTH_STRING,
        PREFECT_API_URL,
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE,
        temporary_settings,
    )

    updates = {PREFECT_API_URL: url, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE: False}
    if settings.prefect_api_auth_string is not None:
        updates[PREFECT_API_AUTH_STRING] = settings.prefect_api_auth_string.get_secret_value()
    with temporary_settings(updates=updates):
        try:
            yield
        finally:
            deliver_events()


def deliver_logs(timeout: float = 5.0) -> None:
    """Send the flow-run log lines this process still holds (the sweep runs' of serve's
    sweeper) and stop Prefect's log worker, while Prefect's API still answers.

    Left to Prefect's drain at interpreter exit, after serve has stopped the server, the worker
    retries against an API that is gone, and serve's exit waited for its retries (60 s). Does
    nothing in a process that never loaded Prefect's logging.
    """
    handlers = sys.modules.get("prefect.logging.handlers")
    if handlers is not None:
        handlers.APILogWorker.drain_all(timeout=timeout)


def deliver_events(timeout: float = 10.0) -> bool:
    """Wait until the events this process queued have been sent; True if they were in time.

    Prefect's client emits an event of its own for every artifact it creates, through a
    background worker that is otherwise drained at interpreter exit: a short command then exits
    with the event still queued, and Prefect's drain logs "EventsWorker - Still processing items"
    as a WARNING. Waiting here, while the API settings above still apply, delivers them (a few
    milliseconds once the websocket is open), so the drain at exit finds nothing left. The worker
    keeps running: another thread of a long-lived process (the web inbox) may be emitting.
    """
    from prefect.events.worker import EventsWorker  # noqa: PLC0415 - Prefect loads lazily

    # Existing workers only: EventsWorker.instance() would start one just to wait on it. The
    # registry is shared by all of Prefect's queue services: the log worker among them holds
    # its batch until the next flush, and waiting on it would take the whole timeout.
    instances = getattr(EventsWorker, "_instances", {}).values()
    workers = [w for w in instances if isinstance(w, EventsWorker)]
    waiting = [
        threading.Thread(target=w.wait_until_empty, name="events-flush", daemon=True)
        for w in workers
    ]
    for thread in waiting:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in waiting:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in waiting)


def check_bind_address(settings: Settings) -> None:
    """Refuse to expose Prefect (no users, no roles) beyond this machine without the auth string."""
    try:
        loopback = ipaddress.ip_address(settings.prefect_host).is_loopback
    except ValueError:
        loopback = settings.prefect_host == "localhost"
    if not loopback and settings.prefect_api_auth_string is None:
        raise BadInput(
            f"RUJUKAN_PREFECT_HOST={settings.prefect_host} would open the Prefect UI to the "
            "network "
            "without a password: set RUJUKAN_PREFECT_API_AUTH_STRING=user:password, or keep "
            "127.0.0.1 and put an authenticating reverse proxy in front"
        )


def server_environment(settings: Settings, api: str | None = None) -> dict[str, str]:
    """Environment of the Prefect server and of every process that talks to it.

    `api`: the Prefect API of a host that runs only some parts (`serve --only`), where the
    operator's PREFECT_UI_API_URL (the address browsers use, behind a proxy) is kept.
    """
    url = api or own_api_url(settings)
    home = prefect_home(settings)
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=url,
        # else the UI calls port 4200 whatever port serves it
        PREFECT_UI_API_URL=os.environ.get("PREFECT_UI_API_URL", url) if api else url,
        PREFECT_SERVER_API_HOST=settings.prefect_host,
        PREFECT_SERVER_API_PORT=str(settings.prefect_port),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",
        DO_NOT_TRACK="1",
        MALLOC_ARENA_MAX=os.environ.get("MALLOC_ARENA_MAX", str(MALLOC_ARENAS)),
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false",
        # Results could hold case data; Rujukan's flows return nothing worth keeping anyway.
        PREFECT_RESULTS_PERSIST_BY_DEFAULT="false",
        # The scheduler makes sweep runs ahead of time, by default an hour's worth (60 runs of a
        # one-minute sweep), which fill the Runs page: a few intervals ahead are enough.
        PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS="2",
        PREFECT_SERVER_SERVICES_SCHEDULER_MIN_SCHEDULED_TIME=(
            f"PT{SCHEDULED_AHEAD_INTERVALS * settings.sweep_interval_seconds}S"
        ),
        # Background services Rujukan has no use for, each a loop of queries while it idles:
        # pause expirations reads every paused run every 5 s (10,000 open referrals: 50 pages
        # of runs), and a referral's run is suspended without a timeout on purpose; the foreman
        # watches work pools and workers (Rujukan's runners are neither); cancellation cleanup
        # ends the subflows of cancelled runs (a referral's run has none).
        PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED="false",
        PREFECT_SERVER_SERVICES_FOREMAN_ENABLED="false",
        PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_ENABLED="false",
        # The runner and its flow runs work in the project folder: relative paths given to
        # serve must name the same files there, or a sweep would open another database.
        RUJUKAN_HOME=str(settings.home.resolve()),
        RUJUKAN_DATABASE_URL=settings.resolved_database_url,
        RUJUKAN_PATHWAYS_DIR=str(settings.pathways_dir.resolve()),
        RUJUKAN_AGENCIES_FILE=str(settings.agencies_file.resolve()),
        RUJUKAN_APPRISE_CONFIG=str(settings.resolved_apprise_config.resolve()),
    )
    if settings.prefect_api_auth_string is not None:
        secret = settings.prefect_api_auth_string.get_secret_value()
        env.update(
            PREFECT_SERVER_API_AUTH_STRING=secret,
            PREFECT_API_AUTH_STRING=secret,
            PREFECT_SERVER_CSRF_PROTECTION_ENABLED="true",
            PREFECT_CLIENT_CSRF_SUPPORT_ENABLED="true",
            PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS=f"http://{settings.prefect_host}:{settings.prefect_port}",
        )
    return env


def start_server(
    settings: Settings, log_file: Path, *, services: bool = True, api: str | None = None
) -> subprocess.Popen:
    """Start `prefect server start` for this home in a child process, its output to `log_file`.

    Without `services`, only the API and UI (`--no-services`): the background services then run
    in their own process (`start_services`), as Prefect's scale-out has it.
    """
    check_bind_address(settings)
    command = ["server", "start", "--host", settings.prefect_host]
    command += ["--port", str(settings.prefect_port)]
    if not services:
        command.append("--no-services")
    return _start_prefect(settings, log_file, command, api)


def start_services(settings: Settings, log_file: Path, api: str | None = None) -> subprocess.Popen:
    """Start Prefect's background services (scheduler, triggers, ...) on their own."""
    return _start_prefect(settings, log_file, ["server", "services", "start"], api)


def _start_prefect(
    settings: Settings, log_file: Path, command: list[str], api: str | None
) -> subprocess.Popen:
    # Owner-only, whatever the umask: Prefect's database and the log describe every referral run.
    make_private_dir(prefect_home(settings), tighten_existing=True)
    make_private_dir(log_file.parent)
    log = open_private(log_file, "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", *command],
        env=server_environment(settings, api),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches serve, which stops the server in order
        umask=PRIVATE_UMASK,  # prefect.db, its WAL and everything under PREFECT_HOME: owner-only
    )


def wait_until_healthy(
    url: str, settings: Settings, process: subprocess.Popen | None = None, timeout: float = 120.0
) -> None:
    """Wait for the API at `url` to answer; raise if the server process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_healthy(url, settings, timeout=2.0):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with status {process.returncode}")
        time.sleep(0.5)
    raise TimeoutError(f"the Prefect server at {url} did not answer within {timeout:.0f} s")
