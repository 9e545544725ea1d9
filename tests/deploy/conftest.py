"""Fixtures of the deployment tests: the command line in process on a home of its own."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from cli.context import run as cli_run
from cli.main import app
from models.directory import load_directory
from models.settings import PROJECT_ROOT, get_settings
from tests.network import free_port

EXAMPLE = PROJECT_ROOT / "examples" / "intake.json"
DIRECTORY = PROJECT_ROOT / "directory" / "bengkulu-tengah.yaml"


@dataclass
class Inbox:
    """A local webhook standing in for every agency's channel: keeps (agency, message) pairs."""

    port: int
    received: list[tuple[str, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def write_channels(self, path: Path) -> Path:
        """An Apprise config sending each agency's messages to /<agency> here (unthrottled)."""
        slugs = [agency.slug for agency in load_directory(DIRECTORY).agencies]
        urls = [{f"json://127.0.0.1:{self.port}/{slug}": [{"tag": slug}]} for slug in slugs]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"version": 1, "urls": urls}, sort_keys=False))
        return path


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A running local HTTP receiver on 127.0.0.1."""
    state = Inbox(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with state.lock:
                state.received.append((self.path.strip("/"), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def cli(tmp_path: Path, database_url: str, inbox: Inbox, monkeypatch: pytest.MonkeyPatch, capsys):
    """Commands in process on a home whose key lives in RUJUKAN_HOME/secret.key (as `init`
    writes it), on SQLite and on PostgreSQL."""
    monkeypatch.setenv("RUJUKAN_HOME", str(tmp_path / "var"))
    for name in ("RUJUKAN_SECRET_KEY", "RUJUKAN_PREVIOUS_SECRET_KEYS", "PREFECT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # Every agency's channel is the local receiver: messages go out at once, not one per 5.5 s.
    monkeypatch.setenv("RUJUKAN_ALLOWED_WEBHOOK_HOSTS", "127.0.0.1")
    inbox.write_channels(tmp_path / "var" / "channels.yaml")

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        get_settings.cache_clear()
        try:
            cli_run(app, list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            get_settings.cache_clear()
        captured = capsys.readouterr()
        result = subprocess.CompletedProcess(list(args), code, captured.out, captured.err)
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    run("init")
    return run


@pytest.fixture
def launch(cli, tmp_path: Path):
    """Launch `count` referrals from the example intake in one batch; their reference codes."""

    def run(count: int) -> list[str]:
        batch = tmp_path / f"batch-{count}.jsonl"
        batch.write_text((EXAMPLE.read_text().replace("\n", " ") + "\n") * count)
        out = cli("launch", "--batch", str(batch), "--json").stdout
        return [json.loads(line)["reference"] for line in out.splitlines()]

    return run
