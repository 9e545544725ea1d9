"""`rujukan step ...` as a thin client of serve's command socket (cli/thin.py).

Here the command socket runs in the test's process (cli.command_socket, the code `rujukan serve`
runs, on a real case database); tests/flows/test_serve_commands.py runs it inside a real serve.
The commands are real `rujukan` processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bench.common import heard_home, receiver_config
from bench.receiver import Receiver
from cli.command_socket import start_command_socket
from models.directory import load_directory
from models.settings import PROJECT_ROOT, Settings, get_settings

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
EXAMPLE = PROJECT_ROOT / "examples" / "intake.json"
POLICE = ("identifikasi", "--agency", "polres-ppa")


class Home:
    """A home with every agency's channel on a local receiver, and commands to run on it."""

    def __init__(self, path: Path, receiver: Receiver, env: dict[str, str]) -> None:
        self.path, self.receiver, self.env = path, receiver, env

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [RUJUKAN, *args], env=env or self.env, cwd=PROJECT_ROOT, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def launch(self) -> str:
        return json.loads(self.ok("launch", "--intake", str(EXAMPLE), "--json"))["reference"]

    def show(self, reference: str) -> dict:
        return json.loads(self.ok("referral", "show", reference, "--json"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    receiver = Receiver()
    path = tmp_path / "home"
    env = heard_home(path, receiver.port)
    # This process plays serve: the settings of the commands' environment.
    for name in [n for n in os.environ if n.startswith("RUJUKAN_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("RUJUKAN_"):
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    made = Home(path, receiver, env)
    made.ok("init")
    yield made
    get_settings.cache_clear()
    receiver.close()


@pytest.fixture
def commands(home: Home):
    """The home's command socket, answered by this process as `rujukan serve` answers it."""
    server = start_command_socket(get_settings(), os.environ)
    assert server is not None
    yield server
    server.close()


def audit_of(home: Home, reference: str) -> list[tuple[str, str]]:
    return [(a["actor"], a["action"]) for a in home.show(reference)["audit"]]


def test_the_socket_is_owner_only_and_gone_when_serve_stops(home: Home):
    server = start_command_socket(get_settings(), os.environ)
    assert server is not None
    sock = home.path / "commands.sock"
    assert (sock.stat().st_mode & 0o777) == 0o600
    assert (home.path.stat().st_mode & 0o777) == 0o700
    server.close()
    assert not sock.exists()


def test_through_the_socket_as_without_it(home: Home, commands):
    """Same output, exit codes, audit entries and messages, through serve or not."""
    through, alone = home.launch(), home.launch()
    results = {}
    for reference in (through, alone):
        if reference == alone:
            commands.close()
            assert not (home.path / "commands.sock").exists()
        seen = len(home.receiver.arrivals)
        runs = [
            home.run("step", "accept", reference, *POLICE, "--by", "ani"),
            home.run("step", "complete", reference, *POLICE, "--outcome", "served", "--by", "ani"),
            home.run("step", "complete", reference, *POLICE, "--outcome", "served"),  # again
            home.run("step", "complete", reference, "identifikasi", "--agency", "dinsos"),
            home.run("step", "decline", reference, "rumah-aman", "--agency", "dinsos",
                     "--reason", "Siti Aminah"),  # a name typed in the wrong field
        ]  # fmt: skip
        results[reference] = [
            (r.returncode, r.stdout, r.stderr.replace(reference, "REF")) for r in runs
        ]
        steps = {s["step"]: s for s in home.show(reference)["steps"]}
        assert steps["identifikasi"]["status"] == "completed"
        ready = {s["agency"] for s in steps.values() if s["status"] == "ready"}
        assert ready and home.receiver.wait_for(seen + len(ready), 10)
        assert all(home.receiver.rows[(agency, reference)] for agency in ready)
    assert results[through] == results[alone]
    codes = [code for code, _, _ in results[through]]
    assert codes == [0, 0, 0, 2, 2]
    assert "messages: 2 sent" in results[through][1][2]
    assert "Siti" not in str(results[through])
    # The same entries under the same actors, refusals included (with no name in them).
    assert audit_of(home, through) == audit_of(home, alone)
    assert "Siti" not in json.dumps(home.show(through))


def test_commands_at_once_get_their_own_answers(home: Home, commands):
    """Serve runs commands of several shells at once; each gets its own output."""
    accepted = [home.launch() for _ in range(3)]
    for reference in accepted:
        home.ok("step", "accept", reference, *POLICE)
    fresh = [home.launch() for _ in range(3)]
    work = [("complete", r, "--outcome", "served") for r in accepted]
    work += [("accept", r) for r in fresh]
    found: dict[tuple, subprocess.CompletedProcess] = {}

    def one(job: tuple) -> None:
        found[job] = home.run("step", job[0], job[1], *POLICE, *job[2:])

    threads = [threading.Thread(target=one, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for job, done in found.items():
        assert done.returncode == 0, done.stderr
        verb = {"complete": "completed", "accept": "accepted"}[job[0]]
        assert done.stdout == f"{verb}: step identifikasi#1 (polres-ppa) is now {verb}\n"
    for reference in accepted:
        steps = {s["step"]: s for s in home.show(reference)["steps"]}
        assert steps["identifikasi"]["status"] == "completed"


def stale_socket(path: Path) -> None:
    """What a killed serve leaves: a socket file nobody listens on."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))


def test_a_stale_socket_or_a_foreign_file_falls_back(home: Home):
    sock = home.path / "commands.sock"
    stale_socket(sock)
    first, second = home.launch(), home.launch()
    done = home.run("step", "accept", first, *POLICE)
    assert done.returncode == 0 and "accepted" in done.stdout, done.stderr
    sock.unlink()
    sock.write_text("not a socket\n")
    done = home.run("step", "accept", second, *POLICE)
    assert done.returncode == 0 and "accepted" in done.stdout, done.stderr
    sock.unlink()
    stale_socket(sock)
    server = start_command_socket(get_settings(), os.environ)  # serve replaces a stale one
    assert server is not None
    try:
        done = home.run("step", "complete", first, *POLICE, "--outcome", "served")
        assert done.returncode == 0 and "completed" in done.stdout, done.stderr
        # A second serve of the home leaves the live socket alone.
        assert start_command_socket(get_settings(), os.environ) is None
        assert sock.exists()
    finally:
        server.close()


def test_a_command_with_other_settings_does_the_work_itself(home: Home, commands, tmp_path):
    """serve answers only commands that would read its settings: here the command names
    another channel config, whose webhook goes to a second receiver."""
    other = Receiver()
    try:
        slugs = [a.slug for a in load_directory(Settings(home=home.path).agencies_file).agencies]
        config = tmp_path / "other-channels.yaml"
        config.write_text(receiver_config(other.port, slugs))
        env = {**home.env, "RUJUKAN_APPRISE_CONFIG": str(config)}
        reference = home.launch()
        home.ok("step", "accept", reference, *POLICE)
        done = home.run("step", "complete", reference, *POLICE, "--outcome", "served", env=env)
        assert done.returncode == 0, done.stderr
        assert other.wait_for(2, 10)  # its own settings: the command sent them itself
    finally:
        other.close()


def test_a_relative_path_setting_binds_the_folder(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A relative RUJUKAN_APPRISE_CONFIG (or database, pathways, directory) is read from where
    the command starts: serve answers only commands started in its own folder then."""
    from cli.thin import fingerprint

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    def seen_from(folder: str, **env: str) -> str:
        monkeypatch.chdir(tmp_path / folder)
        return fingerprint(env)

    relative = {"RUJUKAN_APPRISE_CONFIG": "channels.yaml", "RUJUKAN_WEB_PORT": "8765"}
    assert seen_from("a", **relative) != seen_from("b", **relative)
    relative_db = {"RUJUKAN_DATABASE_URL": "sqlite:///cases.db"}
    assert seen_from("a", **relative_db) != seen_from("b", **relative_db)
    absolute = {"RUJUKAN_APPRISE_CONFIG": "/srv/rujukan/channels.yaml",
                "RUJUKAN_DATABASE_URL": "sqlite:////srv/rujukan/cases.db"}  # fmt: skip
    assert seen_from("a", **absolute) == seen_from("b", **absolute)
    assert seen_from("a", RUJUKAN_HOME="var") == seen_from("b", RUJUKAN_HOME="elsewhere")
    assert seen_from("a", RUJUKAN_WEB_PORT="1") != seen_from("a", RUJUKAN_WEB_PORT="2")
