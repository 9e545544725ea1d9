"""Real receivers for notification tests: a local SMTP mailbox and a local HTTP (json://)
receiver.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from models.catalog import Catalog, load_catalog
from models.settings import PROJECT_ROOT, Settings
from notifications.mailbox import Mailbox, start_mailbox
from tests.network import free_port


@dataclass
class Receiver:
    """A local webhook: answers with the queued status codes first, then 200; keeps what it got."""

    port: int
    statuses: list[int] = field(default_factory=list)
    received: list[dict] = field(default_factory=list)  # delivered (answered 2xx)
    refused: list[dict] = field(default_factory=list)  # answered with an error
    headers: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    down: bool = False

    def url(self, path: str = "hook") -> str:
        """The json:// URL Apprise posts to."""
        return f"json://127.0.0.1:{self.port}/{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running local HTTP receiver on 127.0.0.1."""
    state = Receiver(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with state.lock:
                status = 500 if state.down else (state.statuses.pop(0) if state.statuses else 200)
                (state.received if status < 300 else state.refused).append(body)
                state.headers.append(dict(self.headers))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def mailbox(settings: Settings) -> Iterator[Mailbox]:
    """The demo SMTP mailbox on a free port, storing messages under RUJUKAN_HOME/mailbox."""
    box = start_mailbox(settings, port=free_port())
    yield box
    box.stop()


def write_channels(settings: Settings, channels: dict[str, str | list[str]]) -> Path:
    """Write an Apprise YAML config: tag -> URL (or URLs)."""
    urls = []
    for tag, value in channels.items():
        for url in [value] if isinstance(value, str) else value:
            urls.append({url: [{"tag": tag}]})
    path = settings.resolved_apprise_config
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"version": 1, "urls": urls}, sort_keys=False))
    return path


def mailto(box: Mailbox, slug: str) -> str:
    """A plain-SMTP mailto URL to the test mailbox."""
    return (
        f"mailto://127.0.0.1:{box.port}?from=rujukan@rujukan.local&to={slug}@rujukan.local"
        "&mode=insecure"
    )


@pytest.fixture
def relay_settings(settings: Settings) -> Settings:
    """Settings for relay tests: 127.0.0.1 allowed for webhooks, quick and few retries."""
    return settings.model_copy(
        update={
            "allowed_webhook_hosts": "127.0.0.1",
            "relay_max_attempts": 4,
            "relay_backoff_base_seconds": 10.0,
            "relay_backoff_cap_seconds": 60.0,
        }
    )


def directory_with(tmp_path: Path, changes: dict[str, dict]) -> Path:
    """A copy of the shipped directory with some agencies changed (e.g. locale, time zone)."""
    source = PROJECT_ROOT / "directory" / "bengkulu-tengah.yaml"
    data = yaml.safe_load(source.read_text())
    for agency in data["agencies"]:
        agency.update(changes.get(agency["slug"], {}))
    path = tmp_path / "directory.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def catalog_for(settings: Settings) -> Catalog:
    """The catalog these settings name."""
    return load_catalog(settings)
