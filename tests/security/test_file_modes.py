"""RUJUKAN_HOME is its owner's alone: folders 0700, files 0600, whatever the umask.

The home holds the case database (and its -wal/-shm), the secret key, the channel config,
mail with live links, logs and Prefect's database. Every test runs the real programs under
umask 022 (the common default, which made them 0755/0644) in a child process, then walks the
home. A home left loose by an older version is tightened by `rujukan init` and `rujukan serve`,
which say so.
"""

from __future__ import annotations

import os
import smtplib
import stat
import subprocess
import sys
import textwrap
from email.message import EmailMessage
from pathlib import Path

import pytest

from models.settings import PROJECT_ROOT, Settings
from tests.network import free_port
from tests.polling import wait_for

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
EXAMPLE = PROJECT_ROOT / "examples" / "intake.json"
LOOSE_UMASK = 0o022


def loose_modes(home: Path) -> list[str]:
    """Every folder not 0700 and file not 0600 under `home` (itself included); links skipped."""
    found = []
    for path in [home, *sorted(home.rglob("*"))]:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        wanted = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
        if stat.S_IMODE(info.st_mode) != wanted:
            found.append(f"{oct(stat.S_IMODE(info.st_mode))} {path.relative_to(home.parent)}")
    return found


def environment(home: Path | None, **extra: str) -> dict[str, str]:
    """The environment of an operator's shell, with no Prefect of the test session in it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUJUKAN_"))}
    if home is not None:
        env["RUJUKAN_HOME"] = str(home)
    env["RUJUKAN_SECRET_KEY"] = "file-modes-test-key"
    env.update(extra)
    return env


def rujukan(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """Run the installed `rujukan` under umask 022; fail on a non-zero exit."""
    result = subprocess.run(
        [RUJUKAN, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        umask=LOOSE_UMASK,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def python(script: str, *, cwd: Path, env: dict[str, str]) -> str:
    """Run a Python snippet with the project's code under umask 022; return its output."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        umask=LOOSE_UMASK,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def make_loose(home: Path) -> None:
    """Open a home up as an older version left it: folders 0755, files 0644."""
    for path in [home, *home.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.parametrize("where", ["RUJUKAN_HOME, not yet made", "default ./var"])
def test_init_launch_and_link_leave_an_owner_only_home(tmp_path: Path, where: str):
    if where == "default ./var":
        home, env = tmp_path / "var", environment(None)
    else:
        home = tmp_path / "deep" / "er" / "var"  # missing parents are made too
        env = environment(home)
    rujukan("init", env=env, cwd=tmp_path)
    rujukan("launch", "--intake", str(EXAMPLE), env=env, cwd=tmp_path)
    rujukan("access", "link", "--agency", "dinsos", env=env, cwd=tmp_path)
    assert {p.name for p in home.iterdir()} >= {"rujukan.db", "channels.yaml"}
    assert loose_modes(home) == []
    if where != "default ./var":
        assert loose_modes(tmp_path / "deep") == []


def test_sqlite_wal_and_shm_are_owner_only_even_with_a_loose_umask(tmp_path: Path):
    """The database file is made 0600 before SQLite opens it; SQLite copies its mode to the
    -wal and -shm files. Nothing here resolves settings, so nothing tightens the umask."""
    database = tmp_path / "elsewhere" / "case.db"
    out = python(
        f"""
        import os, stat
        from models.database import make_engine
        engine = make_engine("sqlite:///{database}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        with engine.connect() as held:  # the -wal and -shm files exist while a connection does
            held.exec_driver_sql("SELECT count(*) FROM t").scalar()
            for suffix in ("", "-wal", "-shm"):
                mode = stat.S_IMODE(os.stat("{database}" + suffix).st_mode)
                print(suffix or "db", oct(mode))
            print("umask", oct(os.umask(0)))
        """,
        cwd=tmp_path,
        env=environment(None),
    )
    assert out.split() == ["db", "0o600", "-wal", "0o600", "-shm", "0o600", "umask", "0o22"]
    assert loose_modes(database.parent) == []


@pytest.mark.parametrize("umask_after_settings", [None, LOOSE_UMASK])
def test_the_demo_mailbox_keeps_a_real_smtp_message_owner_only(
    tmp_path: Path, umask_after_settings: int | None
):
    """A message holds live 7-day links. Also when the host process sets its own umask after
    the settings were read (an embedding server): the file is created 0600 regardless."""
    home, port = tmp_path / "var", free_port()
    script = textwrap.dedent(
        f"""
        import os, pathlib, time
        from models.settings import Settings
        from notifications.mailbox import start_mailbox
        settings = Settings(home="{home}", mailbox_port={port})
        if {umask_after_settings!r} is not None:
            os.umask({umask_after_settings!r})
        mailbox = start_mailbox(settings)
        pathlib.Path(r"{tmp_path}", "ready").touch()
        deadline = time.monotonic() + 60
        while not list(mailbox.folder.glob("*.eml")) and time.monotonic() < deadline:
            time.sleep(0.1)
        mailbox.stop()
        """
    )
    catcher = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**environment(None), "PYTHONPATH": str(PROJECT_ROOT)},
        cwd=tmp_path,
        umask=LOOSE_UMASK,
    )
    try:
        wait_for("the mailbox to listen", (tmp_path / "ready").exists, timeout=60, every=0.1)
        message = EmailMessage()
        message["From"], message["To"] = "rujukan@127.0.0.1", "dinsos@127.0.0.1"
        message["Subject"] = "RJK-TEST-01"
        message.set_content("open http://127.0.0.1:8765/s/live-link-token")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(message)
        assert catcher.wait(timeout=60) == 0
    finally:
        if catcher.poll() is None:
            catcher.kill()
    assert [p.suffix for p in (home / "mailbox").iterdir()] == [".eml"]
    assert loose_modes(home) == []


def test_init_tightens_a_home_an_older_version_left_open_and_says_what(tmp_path: Path):
    home, outside = tmp_path / "var", tmp_path / "data" / "case.db"
    env = environment(home, RUJUKAN_DATABASE_URL=f"sqlite:///{outside}")
    del env["RUJUKAN_SECRET_KEY"]  # init writes secret.key
    rujukan("init", env=env, cwd=tmp_path)
    # What older versions wrote, world-readable: mail, logs, Prefect's home, the demo batch.
    for name in (
        "mailbox/20261130T010203.000000-abc123.eml",
        "logs/prefect-server.log",
        "prefect/prefect.db",
        "prefect/prefect.db-wal",
        "demo/batch.jsonl",
    ):
        (home / name).parent.mkdir(exist_ok=True)
        (home / name).write_text("x")
    kept_apart = tmp_path / "not-rujukan.txt"
    kept_apart.write_text("another program's file")
    (home / "link-out").symlink_to(kept_apart)  # a link is not followed out of the home
    make_loose(home)
    make_loose(outside.parent)
    kept_apart.chmod(0o644)

    result = rujukan("init", env=env, cwd=tmp_path)

    assert loose_modes(home) == []
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600  # the database, where it lives
    assert stat.S_IMODE(kept_apart.stat().st_mode) == 0o644
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "now owner-only" in warnings[0] and str(home) in warnings[0]
    assert warnings[0].split(": ", 2)[-1] == (
        f"., {outside}, channels.yaml, demo/ (2), logs/ (2), mailbox/ (2), prefect/ (3), "
        "secret.key, settings.env"
    )
    again = rujukan("init", env=env, cwd=tmp_path)  # nothing left to tighten: no warning
    assert "warning:" not in again.stderr


def test_reading_the_settings_makes_a_new_home_private_and_spares_shared_folders(tmp_path: Path):
    fresh = tmp_path / "fresh" / "var"
    out = python(
        f"""
        import os, stat
        from models.settings import Settings
        Settings(home="{fresh}")
        print(oct(stat.S_IMODE(os.stat("{fresh}").st_mode)), oct(os.umask(0)))
        """,
        cwd=tmp_path,
        env=environment(None),
    )
    assert out.split() == ["0o700", "0o77"]
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # a /tmp-like folder is not Rujukan's to lock
    Settings(home=shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
