"""The command line starts light: help loads typer alone, a hand-off loads only what it runs.

Structural, not timed (bench/row3_handoff.py times them): each check runs a fresh interpreter,
as `rujukan` does, and lists the modules it imported (docs/architecture.md, "The command line
starts light").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.common import heard_home
from bench.receiver import Receiver
from models.settings import PROJECT_ROOT

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
EXAMPLE = PROJECT_ROOT / "examples" / "intake.json"

# The engine and what it brings: none of it is needed to describe a command.
ENGINE = (
    "sqlmodel",
    "sqlalchemy",
    "pydantic_settings",
    "prefect",
    "apprise",
    "matplotlib",
    "httpx",
    "jinja2",
    "uvicorn",
    "fastapi",
    "yaml",
    "cryptography",
    "holidays",
)
OURS = ("models", "flows", "notifications", "web", "cli")

# Renders the help of `rujukan` and of every group and command, the way the console entry point
# runs them (cli.context.run), then prints the modules loaded and how many helps were shown.
EVERY_HELP = """
import contextlib, io, json, sys
import typer.main
from cli.context import run
from cli.main import app

def paths(command, path):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from paths(sub, [*path, name])

shown = 0
for path in list(paths(typer.main.get_command(app), [])):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        run(app, [*path, "--help"])
    shown += "Usage: rujukan" in out.getvalue()
print(json.dumps({"shown": shown, "modules": sorted(sys.modules)}))
"""

# Runs `rujukan ARGS` through the console entry point and writes the modules it loaded to FILE.
LISTING = """
import atexit, json, sys
out, args = sys.argv[1], sys.argv[2:]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["rujukan", *args]
from cli.main import main
main()
"""


def loaded(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules if m.split(".")[0] in packages})


def test_every_help_loads_typer_and_none_of_the_engine():
    done = subprocess.run(
        [sys.executable, "-c", EVERY_HELP],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["shown"] > 40  # `rujukan`, its groups and their commands
    assert "typer" in result["modules"]
    assert loaded(result["modules"], ENGINE) == []
    ours = [m for m in result["modules"] if m.split(".")[0] in OURS]
    assert [m for m in ours if m.split(".")[0] != "cli"] == [
        "models",
        "models.codes",
        "models.private",
    ]
    assert "cli.views" not in ours


def test_a_hand_off_loads_no_prefect_no_charts_no_web(tmp_path):
    receiver = Receiver()  # every agency's channel: a local JSON receiver, so messages go
    home = tmp_path / "home"
    env = heard_home(home, receiver.port)

    def rujukan(*args: str) -> str:
        done = subprocess.run(
            [RUJUKAN, *args], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def modules_of(*args: str) -> list[str]:
        listing = tmp_path / "modules.json"
        done = subprocess.run(
            [sys.executable, "-c", LISTING, str(listing), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(listing.read_text())

    try:
        rujukan("init")
        reference = json.loads(rujukan("launch", "--intake", str(EXAMPLE), "--json"))["reference"]
        police = ("identifikasi", "--agency", "polres-ppa")

        accepted = modules_of("step", "accept", reference, *police)
        assert "models.actions" in accepted  # it did the work
        # An acceptance queues no message: no Apprise, no relay, no templates.
        assert loaded(accepted, ("prefect", "matplotlib", "uvicorn", "fastapi", "apprise")) == []
        assert "notifications.relay" not in accepted

        completed = modules_of("step", "complete", reference, *police, "--outcome", "served")
        assert "notifications.relay" in completed  # the next agencies' messages went out
        # No Prefect server is configured: no Prefect, and no HTTP client to ask for one.
        assert loaded(completed, ("prefect", "matplotlib", "uvicorn", "fastapi", "httpx")) == []
        assert [m for m in completed if m.startswith(("web", "cli.views", "models.report"))] == []
        assert receiver.wait_for(3, 10)  # the launch's message, then the next two agencies'
    finally:
        receiver.close()


def test_a_hand_off_through_serve_loads_no_engine(tmp_path, monkeypatch):
    """With a serve of the home answering on its command socket, `rujukan step complete` is a
    thin client: typer and the standard library; serve does the work (cli/thin.py)."""
    from cli.command_socket import start_command_socket
    from models.settings import get_settings

    receiver = Receiver()
    home = tmp_path / "home"
    env = heard_home(home, receiver.port)
    for name in [n for n in os.environ if n.startswith("RUJUKAN_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("RUJUKAN_"):
            monkeypatch.setenv(name, value)  # this process answers as serve would, same settings
    get_settings.cache_clear()

    def rujukan(*args: str) -> str:
        done = subprocess.run(
            [RUJUKAN, *args], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    server = None
    try:
        rujukan("init")
        reference = json.loads(rujukan("launch", "--intake", str(EXAMPLE), "--json"))["reference"]
        police = ("identifikasi", "--agency", "polres-ppa")
        rujukan("step", "accept", reference, *police)
        server = start_command_socket(get_settings(), os.environ)
        assert server is not None
        listing = tmp_path / "modules.json"
        args = ("step", "complete", reference, *police, "--outcome", "served")
        done = subprocess.run(
            [sys.executable, "-c", LISTING, str(listing), *args],
            env=env, cwd=tmp_path, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == "completed: step identifikasi#1 (polres-ppa) is now completed\n"
        assert done.stderr == "messages: 2 sent\n"
        thin = json.loads(listing.read_text())
        assert "cli.thin" in thin  # it asked serve
        assert loaded(thin, ENGINE) == []  # no sqlmodel, pydantic settings, Apprise, Prefect...
        ours = [m for m in thin if m.split(".")[0] in OURS and m.split(".")[0] != "cli"]
        assert ours == ["models", "models.codes", "models.private"]
        assert "cli.step_actions" not in thin
        assert receiver.wait_for(3, 10)  # the launch's message, then the next two agencies'
        steps = json.loads(rujukan("referral", "show", reference, "--json"))["steps"]
        assert {s["step"]: s["status"] for s in steps}["identifikasi"] == "completed"
    finally:
        if server is not None:
            server.close()
        get_settings.cache_clear()
        receiver.close()
