"""A real `rujukan serve` answers `rujukan step ...` of its home on its command socket.

The command is a thin client (cli/thin.py): it loads no engine, serve records the completion,
the next agencies hear at once, and the command says what it says without serve. When serve
stops, the socket goes and commands work on their own again.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import Serve, heard_home
from bench.receiver import Receiver
from models.settings import PROJECT_ROOT
from tests.core.test_cli_imports import ENGINE, LISTING, loaded

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
EXAMPLE = PROJECT_ROOT / "examples" / "intake.json"
POLICE = ("identifikasi", "--agency", "polres-ppa")


def test_a_completion_through_serve_is_recorded_and_heard(tmp_path: Path):
    receiver = Receiver()
    home = tmp_path / "home"
    env = heard_home(home, receiver.port)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [RUJUKAN, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip

    def ok(*args: str) -> str:
        done = run(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def show(reference: str) -> dict:
        return json.loads(ok("referral", "show", reference, "--json"))

    def listed(*args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        """`rujukan ARGS` and the modules it loaded."""
        listing = tmp_path / "modules.json"
        done = subprocess.run(
            [sys.executable, "-c", LISTING, str(listing), *args],
            env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return done, json.loads(listing.read_text())

    server = Serve(home=home, env=env)
    try:
        ok("init")
        through, alone = [json.loads(ok("launch", "--intake", str(EXAMPLE), "--json"))["reference"]
                          for _ in range(2)]  # fmt: skip
        for reference in (through, alone):
            ok("step", "accept", reference, *POLICE, "--by", "ani")
        complete = ("step", "complete", "--outcome", "served", "--by", "ani")
        without, modules = listed(*complete[:2], alone, *POLICE, *complete[2:])
        assert "models.actions" in modules  # no serve: the command did the work

        server.start()
        sock = home / "commands.sock"
        assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
        seen = len(receiver.arrivals)
        served, modules = listed(*complete[:2], through, *POLICE, *complete[2:])
        assert loaded(modules, ENGINE) == [] and "models.actions" not in modules  # serve did it

        # The same output and exit code as without serve.
        assert (served.returncode, served.stdout, served.stderr) == (
            without.returncode,
            without.stdout,
            without.stderr,
        )
        assert served.returncode == 0 and served.stdout.startswith("completed: step identifikasi")
        # Recorded, under the same actor and actions as without serve.
        steps = {s["step"]: s for s in show(through)["steps"]}
        assert steps["identifikasi"]["status"] == "completed"
        assert [(a["actor"], a["action"]) for a in show(through)["audit"]] == [
            (a["actor"], a["action"]) for a in show(alone)["audit"]
        ]
        # The next agencies heard.
        ready = {s["agency"] for s in steps.values() if s["status"] == "ready"}
        assert ready and receiver.wait_for(seen + len(ready), 10)
        assert all(receiver.rows[(agency, through)] for agency in ready)
        # A refusal is told as without serve (and audited by serve).
        again = run(*complete[:2], through, *POLICE, *complete[2:])
        assert again.returncode == 0 and again.stderr.startswith("note: the step is already")
    finally:
        _took, left = server.stop()
        receiver.close()
    assert left == []
    assert not (home / "commands.sock").exists()  # serve removed it at exit
    done = run("step", "complete", through, *POLICE, "--outcome", "served")  # on its own again
    assert done.returncode == 0 and done.stderr.startswith("note: the step is already")
