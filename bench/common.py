"""What every row of the benchmark suite shares: figures, machine facts, temporary homes,
`rujukan serve` started on free ports, the processes of a home and their memory and CPU."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from models.settings import PROJECT_ROOT

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
UP_MARK = "Ctrl-C stops everything"
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass
class Figure:
    """One measured figure of a row, beside its baseline from the same run.

    `ratio` is figure / baseline. `met` is None when the figure could not be measured here
    (then `notes` says why) or when its target is not a number this run can check.
    """

    row: int
    what: str
    unit: str
    figure: float | None
    baseline: float | None = None
    baseline_what: str = ""
    target: str = ""
    met: bool | None = None
    notes: str = ""
    ratio: float | None = field(default=None)

    def __post_init__(self) -> None:
        if self.figure is not None and self.baseline:
            self.ratio = round(self.figure / self.baseline, 2)

    def as_dict(self) -> dict:
        return asdict(self)


def not_measured(row: int, what: str, why: str, target: str = "") -> Figure:
    """A figure this run could not measure, and why (never a silent skip)."""
    return Figure(row=row, what=what, unit="", figure=None, target=target, notes=why)


def at_most(value: float | None, limit: float) -> bool | None:
    """True if value <= limit; None without a value."""
    return None if value is None else value <= limit


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (fraction 0.5 = median)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the machine -------------------------------------------------------------------------------


def postgres_url() -> str | None:
    """The local PostgreSQL admin URL if the server answers, else None."""
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_ADMIN, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return POSTGRES_ADMIN
    except Exception:  # noqa: BLE001 - unreachable: the rows that need it say so
        return None
    finally:
        engine.dispose()


def postgres_version() -> str | None:
    from sqlalchemy import create_engine, text

    if postgres_url() is None:
        return None
    engine = create_engine(POSTGRES_ADMIN)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("show server_version")).scalar())
    finally:
        engine.dispose()


def machine() -> dict:
    """Facts about the machine and the code measured."""
    import psutil

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version(),
        "platform": platform.platform(),
        "git_commit": commit + ("+uncommitted" if dirty else ""),
    }


@contextmanager
def temp_postgres() -> Iterator[str | None]:
    """A throwaway PostgreSQL database (its URL), dropped afterwards; None if unreachable."""
    from sqlalchemy import create_engine, text

    if postgres_url() is None:
        yield None
        return
    name = f"rujukan_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        from models.database import engine_for

        engine_for.cache_clear()  # its pooled connections would block the drop
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- processes ---------------------------------------------------------------------------------


def processes_of(home: Path) -> list[int]:
    """Every process whose environment has RUJUKAN_HOME=home: serve and all it started."""
    marker = f"RUJUKAN_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue  # gone already, or not ours
    return found


def _rss_and_cpu(pids: list[int]) -> tuple[int, float]:
    import psutil

    rss, cpu = 0, 0.0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            rss += p.memory_info().rss
            t = p.cpu_times()
            cpu += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return rss, cpu


class Sampler:
    """Samples the summed RSS and CPU time of a home's processes every `interval` seconds."""

    def __init__(self, home: Path, interval: float = 0.5) -> None:
        self.home, self.interval = home, interval
        self.peak_rss = 0
        self.samples: list[tuple[float, int, float, int]] = []  # (time, rss, cpu, processes)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            pids = processes_of(self.home)
            rss, cpu = _rss_and_cpu(pids)
            self.samples.append((time.monotonic(), rss, cpu, len(pids)))
            self.peak_rss = max(self.peak_rss, rss)
            self.stop_event.wait(self.interval)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop_event.set()
        self.thread.join()


def snapshot(home: Path) -> tuple[int, float, int]:
    """RSS (bytes), CPU seconds so far (with waited-for children) and count of the home's
    processes."""
    pids = processes_of(home)
    rss, cpu = _rss_and_cpu(pids)
    return rss, cpu, len(pids)


# --- a home and `rujukan serve` ----------------------------------------------------------------


def home_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of commands on a temporary home: no inherited Prefect or Rujukan
    settings, local channels allowed, free ports for serve."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUJUKAN_"))}
    web_port = free_port()
    env.update(
        RUJUKAN_HOME=str(home),
        RUJUKAN_SECRET_KEY="bench-secret-key",
        RUJUKAN_APPRISE_CONFIG=str(home / "channels.yaml"),
        RUJUKAN_ALLOWED_WEBHOOK_HOSTS="127.0.0.1",
        RUJUKAN_PREFECT_PORT=str(free_port()),
        RUJUKAN_WEB_PORT=str(web_port),
        RUJUKAN_MAILBOX_PORT=str(free_port()),
        RUJUKAN_BASE_URL=f"http://127.0.0.1:{web_port}",
        DO_NOT_TRACK="1",
    )
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `rujukan ARGS` on the home of `env`; raise with its stderr if it fails."""
    done = subprocess.run(
        [RUJUKAN, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"rujukan {' '.join(args[:2])} failed: {done.stderr.strip()[-300:]}")
    return done


@dataclass
class Serve:
    """`rujukan serve` on a temporary home and free ports."""

    home: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def prefect_api(self) -> str:
        return f"http://127.0.0.1:{self.env['RUJUKAN_PREFECT_PORT']}/api"

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.env['RUJUKAN_WEB_PORT']}"

    def start(self, timeout: float = 240) -> float:
        """Start serve; seconds until it says it is ready (its 'Ctrl-C stops everything')."""
        self.log = self.home / "logs" / f"bench-serve-{int(time.time())}.out"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [RUJUKAN, "serve"],
            env=self.env,
            cwd=PROJECT_ROOT,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        while time.perf_counter() - started < timeout:
            if UP_MARK in self.log.read_text(errors="replace"):
                return time.perf_counter() - started
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited while starting (see {self.log})")
            time.sleep(0.2)
        raise RuntimeError(f"serve did not come up within {timeout:.0f} s (see {self.log})")

    def stop(self, grace: float = 60) -> tuple[float, list[str]]:
        """SIGTERM to serve, as a service manager stops it; (seconds to exit, what outlived it).

        Whatever is left a few seconds after serve exited is listed by name and then killed."""
        if self.process is None:
            return 0.0, []
        started = time.perf_counter()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        took = time.perf_counter() - started
        time.sleep(3)
        left = []
        for pid in processes_of(self.home):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            left.append(f"{pid}: {cmd[:80]}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return took, left


def heard_home(home: Path, port: int) -> dict[str, str]:
    """Make `home` (made if need be) a home whose every agency's channel is the local JSON
    receiver on `port`; the environment of commands on it (`home_env`)."""
    from models.directory import load_directory  # noqa: PLC0415 - the engine, when used
    from models.settings import Settings  # noqa: PLC0415

    home.mkdir(parents=True, exist_ok=True)
    slugs = [a.slug for a in load_directory(Settings(home=home).agencies_file).agencies]
    (home / "channels.yaml").write_text(receiver_config(port, slugs))
    return home_env(home)


def receiver_config(port: int, tags: list[str]) -> str:
    """An Apprise YAML config sending every tag's messages to a local JSON receiver."""
    lines = ["version: 1", "urls:"]
    for tag in tags:
        lines += [f'  - "json://127.0.0.1:{port}/{tag}":', f"      - tag: {tag}"]
    return "\n".join(lines) + "\n"


def prefect_count(api: str, names: list[str], tag: str | None = None) -> int:
    """How many flow runs with these names (and this tag, if given) the Prefect API shows."""
    total = 0
    with httpx.Client(timeout=30) as http:
        for start in range(0, len(names), 200):
            flow_runs: dict = {"name": {"any_": names[start : start + 200]}}
            if tag:
                flow_runs["tags"] = {"all_": [tag]}
            response = http.post(f"{api}/flow_runs/count", json={"flow_runs": flow_runs})
            response.raise_for_status()
            total += int(response.json())
    return total


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
