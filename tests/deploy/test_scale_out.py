"""Prefect's own scale-out on this machine's PostgreSQL and Redis, as separate processes.

The topology of docs/deploy.md, each part a `rujukan serve --only ...` process with a home of its
own (as on its own host): the Prefect API (`--no-services`) and Prefect's background services on
PostgreSQL with Redis messaging, two workers serving the referral and deadline-sweep deployments,
two inbox processes sharing rate-limit counters in Redis, and the relay. A batch of referrals is
launched; agencies act through both inbox processes at once while the scheduled sweeps run on
the two workers; one worker and one inbox are killed with SIGKILL mid-way, and the agencies go on
through the other inbox (as a reverse proxy would send them). Then: every referral reaches the
state its actions lead to, no transition or notice is doubled, the audit chain is whole, every
sweep ran on a worker, and each referral's Prefect run shows what the case database says.

A longer form with more referrals: `python -m bench.scale_out --referrals 60`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from bench.receiver import Receiver
from models.settings import PROJECT_ROOT
from tests.conftest import PG_ADMIN
from tests.network import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.prefect, pytest.mark.slow, pytest.mark.exclusive]

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
PREFECT = str(Path(sys.executable).parent / "prefect")
REDIS = os.environ.get("RUJUKAN_TEST_REDIS", "redis://127.0.0.1:6379")
PATHWAY = "demo-singkat"  # seconds-long deadlines: the sweeps find overdue steps within a minute
# The longer form (bench/scale_out.py) raises it.
REFERRALS = int(os.environ.get("RUJUKAN_SCALE_OUT_REFERRALS", "8"))
UP = "Ctrl-C stops them."


def _redis_or_skip():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS}: {exc.__class__.__name__}")
    return client


def _postgres_or_skip():
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable ({PG_ADMIN}): {exc.__class__.__name__}")


def processes_with(marker: str) -> list[int]:
    """Every process whose environment holds `marker` (a part and all it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@dataclass
class Part:
    """One `rujukan serve --only` process: its home stands for its host."""

    name: str
    parts: str
    env: dict[str, str]
    home: Path
    process: subprocess.Popen | None = None
    offset: int = 0  # where this start's output begins in the part's output file

    @property
    def out(self) -> Path:
        return self.home.parent / f"{self.name}.out"

    def start(self) -> None:
        self.offset = self.out.stat().st_size if self.out.exists() else 0
        with self.out.open("ab") as handle:
            self.process = subprocess.Popen(
                [RUJUKAN, "serve", "--only", self.parts],
                env=self.env,
                cwd=self.home.parent,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )

    def wait_up(self, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while UP not in self.out.read_bytes()[self.offset :].decode(errors="replace"):
            assert self.process.poll() is None, f"{self.name} exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"{self.name} did not come up:\n{self.log()}"
            time.sleep(0.5)

    def flow_runs_running(self) -> int:
        """Flow-run processes this worker has started and that still run (a sweep, a Resume)."""
        count = 0
        for pid in processes_with(f"RUJUKAN_HOME={self.home}"):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            count += b"serve" not in command and b"flows.deployments" not in command
        return count

    def kill(self) -> None:
        """SIGKILL the part and every process it started, as a host that loses power."""
        for pid in processes_with(f"RUJUKAN_HOME={self.home}"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        for pid in processes_with(f"RUJUKAN_HOME={self.home}"):  # nothing left behind
            os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        text = self.out.read_text(errors="replace")[-3000:]
        for log in sorted((self.home / "logs").glob("*.log")):
            text += f"\n--- {log.name}\n" + log.read_text(errors="replace")[-3000:]
        return text


@dataclass
class Cluster:
    """The running topology and what the agencies did through it."""

    root: Path
    env: dict[str, str]
    api: str
    parts: dict[str, Part]
    inboxes: list[str]
    receiver: Receiver
    startup_seconds: float = 0.0
    tokens: dict[str, str] = field(default_factory=dict)
    acted: Counter = field(default_factory=Counter)  # (step id, verb) -> answered "changed"
    problems: list[str] = field(default_factory=list)
    received: Counter = field(default_factory=Counter)  # (agency, title) -> deliveries

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [RUJUKAN, *args], env={**self.env, "RUJUKAN_HOME": str(self.root / "ops")},
            cwd=self.root, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """The topology, started part by part as docs/deploy.md orders it; stopped at the end."""
    redis = _redis_or_skip()
    admin = _postgres_or_skip()
    root = tmp_path_factory.mktemp("scale-out")
    tag = uuid.uuid4().hex[:8]
    case_db, prefect_db = f"rujukan_case_{tag}", f"rujukan_prefect_{tag}"
    with admin:
        admin.execute(f'CREATE DATABASE "{case_db}"')
        admin.execute(f'CREATE DATABASE "{prefect_db}"')

    def forget() -> None:  # also when the setup fails half-way
        from models.database import engine_for

        engine_for.cache_clear()
        with _postgres_or_skip() as admin:
            for name in (case_db, prefect_db):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for db in (10, 11, 12):
            redis.connection_pool.connection_kwargs["db"] = db
            redis.flushdb()

    request.addfinalizer(forget)
    # Redis databases of their own (10: Prefect messaging, 11: Docket, 12: rate limits).
    for db in (10, 11, 12):
        redis.connection_pool.connection_kwargs["db"] = db
        redis.flushdb()
    receiver = Receiver()
    request.addfinalizer(receiver.close)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    channels = root / "channels.yaml"
    directory = yaml.safe_load((PROJECT_ROOT / "directory" / "bengkulu-tengah.yaml").read_text())
    channels.write_text(receiver.channel_config([a["slug"] for a in directory["agencies"]]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUJUKAN_"))}
    env.update(
        # Rujukan: one case database, one key, one channels file for every host.
        RUJUKAN_DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:5432/{case_db}",
        RUJUKAN_SECRET_KEY="scale-out-test-key",
        RUJUKAN_APPRISE_CONFIG=str(channels),
        RUJUKAN_ALLOWED_WEBHOOK_HOSTS="127.0.0.1",
        RUJUKAN_SWEEP_INTERVAL_SECONDS="10",
        RUJUKAN_RELAY_INTERVAL_SECONDS="1",
        RUJUKAN_RATE_LIMIT_STORAGE=f"{REDIS}/12",
        RUJUKAN_REFUSALS_PER_CLIENT="6/minute",
        RUJUKAN_PREFECT_PORT=str(port),
        # Prefect's scale-out (docs/deploy.md): PostgreSQL, Redis messaging, Docket, leases.
        PREFECT_API_URL=api,
        PREFECT_SERVER_DATABASE_CONNECTION_URL=(
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{prefect_db}"
        ),
        PREFECT_SERVER_DATABASE_MIGRATE_ON_START="false",
        PREFECT_SERVER_EVENTS_MESSAGING_BROKER="prefect_redis.messaging",
        PREFECT_SERVER_EVENTS_MESSAGING_CACHE="prefect_redis.messaging",
        PREFECT_SERVER_EVENTS_CAUSAL_ORDERING="prefect_redis.ordering",
        PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE="prefect_redis.lease_storage",
        # A sweep claimed by a worker that dies before starting it gives its slot back after
        # 30 s, the least Prefect allows (a running one renews its lease for 300 s).
        PREFECT_SERVER_CONCURRENCY_INITIAL_DEPLOYMENT_LEASE_DURATION="30",
        PREFECT_REDIS_MESSAGING_HOST="127.0.0.1",
        PREFECT_REDIS_MESSAGING_PORT="6379",
        PREFECT_REDIS_MESSAGING_DB="10",
        PREFECT_SERVER_DOCKET_URL=f"{REDIS}/11",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    started = time.monotonic()
    # 1. Both databases migrated once, before any part starts (Prefect's takes ~20 s); `rujukan
    # init` also registers the pathways (the automation it makes once the API answers is not
    # needed here).
    init = subprocess.Popen(
        [RUJUKAN, "init"], env={**env, "RUJUKAN_HOME": str(root / "ops")}, cwd=root,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        [PREFECT, "server", "database", "upgrade", "-y"],
        env={**env, "PREFECT_HOME": str(root / "ops" / "prefect")},
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    assert init.wait(timeout=120) == 0
    web_ports = [free_port(), free_port()]
    parts = {
        name: Part(name, only, {**env, "RUJUKAN_HOME": str(root / name / "var"), **extra},
                   root / name / "var")
        for name, only, extra in (
            ("api", "api", {}),
            ("services", "services", {}),
            ("worker-1", "worker", {}),
            ("worker-2", "worker", {}),
            ("inbox-1", "inbox", {"RUJUKAN_WEB_PORT": str(web_ports[0])}),
            ("inbox-2", "inbox", {"RUJUKAN_WEB_PORT": str(web_ports[1])}),
            ("relay", "relay", {}),
        )
    }  # fmt: skip
    for part in parts.values():
        part.home.mkdir(parents=True)
    cluster = Cluster(
        root=root,
        env=env,
        api=api,
        parts=parts,
        inboxes=[f"http://127.0.0.1:{p}" for p in web_ports],
        receiver=receiver,
    )
    try:
        # 2. Every part at once, as hosts boot: the workers wait for the API to answer.
        for part in parts.values():
            part.start()
        for part in parts.values():
            part.wait_up()
        cluster.startup_seconds = time.monotonic() - started
        yield cluster
    finally:
        for part in parts.values():  # all at once, as when the hosts shut down
            part.terminate()
        for part in reversed(parts.values()):
            part.stop()


def _sweeps(cluster: Cluster) -> list[str]:
    """The sweep runs Prefect knows (for a failure's message)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: cluster.api}):
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["deadline-sweep"])), limit=200
            )
    return [f"{r.name} {r.state_name} {r.start_time}" for r in runs if r.state_name != "Scheduled"]


def _rss_mib(pid: int) -> float:
    """Resident memory of one process in MiB (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((ln for ln in status.splitlines() if ln.startswith("VmRSS:")), "VmRSS: 0 kB")
    return int(line.split()[1]) / 1024


def _open_steps(url: str, verb_for_status: dict[str, str]) -> list[tuple[str, int, str, str]]:
    """(reference, step id, agency, verb) of every step an agency may act on now."""
    from sqlmodel import Session, select

    from models.database import engine_for
    from models.referral import Referral
    from models.step import Step

    with Session(engine_for(url)) as session:
        rows = session.exec(
            select(Step, Referral.reference).join(Referral, Referral.id == Step.referral_id)
        ).all()
    return [
        (reference, step.id, step.agency, verb_for_status[step.status.value])
        for step, reference in rows
        if step.status.value in verb_for_status
    ]


def _act(cluster: Cluster, lane: int, action: tuple[str, int, str, str]) -> None:
    """POST one action through inbox `lane`, or through the other one if it is down."""
    reference, step_id, agency, verb = action
    body = {"outcome": "served"} if verb == "complete" else {}
    path = f"/api/referrals/{reference}/steps/{step_id}/{verb}"
    headers = {"Authorization": f"Bearer {cluster.tokens[agency]}"}
    for attempt in range(4):
        base = cluster.inboxes[(lane + attempt) % 2]
        try:
            response = httpx.post(base + path, json=body, headers=headers, timeout=60)
        except httpx.TransportError:
            continue  # that inbox is gone: the proxy sends the retry to the other
        if response.status_code != 200:
            cluster.problems.append(f"{verb} step {step_id}: HTTP {response.status_code}")
        elif response.json().get("changed"):
            cluster.acted[(step_id, verb)] += 1
        return
    cluster.problems.append(f"{verb} step {step_id}: no inbox answered")


def test_scale_out_survives_a_killed_worker_and_inbox(cluster: Cluster, monkeypatch) -> None:
    from sqlmodel import Session, select

    from models.database import engine_for
    from models.referral import Referral
    from models.step import Step

    for name, value in cluster.env.items():  # this process reads the same case database
        if name.startswith("RUJUKAN_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("RUJUKAN_HOME", str(cluster.root / "ops"))
    url = cluster.env["RUJUKAN_DATABASE_URL"]
    began = datetime.now(UTC)
    phases: list[str] = []

    def phase(name: str) -> None:
        phases.append(f"{name} {(datetime.now(UTC) - began) / timedelta(seconds=1):.0f} s")

    # Tokens for the agencies of the pathway, as `rujukan access issue --agency` makes them.
    from models.access import GrantKind, issue_grant
    from models.catalog import load_catalog
    from models.database import transaction
    from models.settings import Settings

    catalog = load_catalog(Settings())
    with transaction(engine_for(url)) as session:
        for agency in ("polres-ppa", "dinkes", "dinsos"):
            _, cluster.tokens[agency] = issue_grant(
                session, kind=GrantKind.agency, agency=agency, holder="focal",
                issued_by="test", now=datetime.now(UTC), catalog=catalog,
            )  # fmt: skip
    intake = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())
    intake["pathway"] = PATHWAY
    batch = cluster.root / "batch.jsonl"
    batch.write_text((json.dumps(intake) + "\n") * REFERRALS)
    launched = [
        json.loads(line)["reference"]
        for line in cluster.cli("launch", "--batch", str(batch), "--json").splitlines()
    ]
    assert len(launched) == REFERRALS
    # Half the referrals are taken all the way; nobody acts on the others, whose first step goes
    # overdue (30 s) while the sweeps run.
    finish = set(launched[: REFERRALS // 2])

    def round_of_actions(verbs: dict[str, str]) -> None:
        actions = [a for a in _open_steps(url, verbs) if a[0] in finish]
        lanes = [actions[0::2], actions[1::2]]
        threads = [
            threading.Thread(target=lambda lane=lane: [_act(cluster, lane, a) for a in lanes[lane]])
            for lane in (0, 1)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    phase("launched")
    round_of_actions({"ready": "accept"})  # identification accepted, through both inboxes
    # Mid-way: a worker host and an inbox host die without warning. The worker dies between two
    # flow runs: one killed in the middle of a sweep keeps the sweep's concurrency slot until its
    # lease expires (Prefect's flow engine renews it for 300 s), and the sweeps scheduled until
    # then are cancelled (docs/deploy.md); a CI run does not wait five minutes for that.
    deadline = time.monotonic() + 30
    while cluster.parts["worker-1"].flow_runs_running() and time.monotonic() < deadline:
        time.sleep(0.2)
    cluster.parts["worker-1"].kill()
    cluster.parts["inbox-1"].kill()
    killed_at = datetime.now(UTC)
    round_of_actions({"accepted": "complete"})  # identification completed: two steps each ready
    round_of_actions({"ready": "accept"})
    round_of_actions({"accepted": "complete"})
    phase("acted")

    # Every referral reaches its state: the finished ones completed, the others waiting with
    # their first step marked overdue by a sweep of the surviving worker.
    deadline = time.monotonic() + 90
    while True:
        with Session(engine_for(url)) as session:
            states = {
                r.reference: (
                    r.status.value,
                    sorted(
                        (s.key, s.status.value, s.overdue)
                        for s in session.exec(select(Step).where(Step.referral_id == r.id))
                    ),
                )
                for r in session.exec(select(Referral))
            }
        waiting = [
            ref for ref, (status, steps) in states.items()
            if (status != "completed" if ref in finish else
                status != "active" or ("identifikasi", "ready", True) not in steps)
        ]  # fmt: skip
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not waiting, ({ref: states[ref] for ref in waiting}, _sweeps(cluster), killed_at)
    phase("settled")
    assert not cluster.problems, cluster.problems

    # No transition doubled or lost, no notice queued twice, the audit chain whole.
    from models.outbox import OutboxMessage, OutboxStatus
    from tests.accounting import accounting_problems

    with Session(engine_for(url)) as session:
        assert accounting_problems(session) == []
        assert all(count == 1 for count in cluster.acted.values())
        outbox = session.exec(select(OutboxMessage)).all()
    assert json.loads(cluster.cli("audit", "verify", "--json"))["ok"] is True

    # Every notice delivered, none twice (the only allowance: a send that a kill cut between the
    # delivery and its record, once per killed process).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with Session(engine_for(url)) as session:
            pending = session.exec(
                select(OutboxMessage).where(OutboxMessage.status != OutboxStatus.sent)
            ).all()
        if not pending:
            break
        time.sleep(1)
    assert not pending, [(m.id, m.status.value) for m in pending]
    # rows delivered, by single message or as rows of a digest (the receiver reads both)
    delivered = sum(cluster.receiver.rows.values())
    assert len(outbox) <= delivered <= len(outbox) + 2, (len(outbox), delivered)
    phase("delivered")

    # The sweeps: run by the workers, on schedule, before and after the kill.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.referral import REFERRAL_FLOW, referral_tags
    from models.actions import steps_of

    with temporary_settings(updates={PREFECT_API_URL: cluster.api}):
        with get_client(sync_client=True) as client:
            # Worker 1 and everything it started are dead: a sweep that starts after the kill
            # runs on worker 2, which takes over the schedule. If worker 1 died mid-sweep, its
            # concurrency slot comes back when the lease expires (30 s here), so the sweeps
            # scheduled meanwhile are cancelled: wait for the first one after that.
            deadline = time.monotonic() + 120
            while True:
                sweeps = [
                    r
                    for r in client.read_flow_runs(
                        flow_filter=FlowFilter(name=FlowFilterName(any_=["deadline-sweep"])),
                        limit=200,
                    )
                    if r.state_type.value != "SCHEDULED"
                ]
                after = [
                    r for r in sweeps
                    if r.state_type.value == "COMPLETED" and r.start_time > killed_at
                ]  # fmt: skip
                if after or time.monotonic() > deadline:
                    break
                time.sleep(3)
            assert after, "\n".join(
                f"{r.name} {r.state_name} {r.start_time} (killed at {killed_at})" for r in sweeps
            )
            phase("a sweep after the kill")

            # Prefect's view: one run per referral, the recorded one, tagged as the database says.
            deadline = time.monotonic() + 60
            while True:
                now = datetime.now(UTC)
                with Session(engine_for(url)) as session:
                    want = {
                        r.reference: (r.flow_run_id, referral_tags(r, steps_of(session, r.id), now))
                        for r in session.exec(select(Referral))
                    }
                runs = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[REFERRAL_FLOW])), limit=200
                )
                by_name = Counter(r.name for r in runs)
                found = [f"{ref}: {by_name[ref]} runs" for ref in want if by_name[ref] != 1]
                for run in runs:
                    if run.name in want:
                        run_id, tags = want[run.name]
                        if str(run.id) != run_id:
                            found.append(f"{run.name}: run {run.id} is not the one recorded")
                        elif sorted(run.tags) != tags:
                            found.append(f"{run.name}: tags {sorted(run.tags)}, database {tags}")
                        elif (run.state_name == "Completed") != (run.name in finish):
                            found.append(f"{run.name}: state {run.state_name}")
                if not found or time.monotonic() > deadline:
                    break
                time.sleep(3)
    assert not found, found
    phase("prefect matches")

    # The killed inbox comes back (as systemd restarts it), and the two inbox processes share
    # one budget of refused credentials per client through Redis: three refusals at each, and
    # the next request without valid credentials is turned away by either.
    cluster.parts["inbox-1"].start()
    cluster.parts["inbox-1"].wait_up()
    for base in cluster.inboxes * 3:
        refused = httpx.get(f"{base}/api/me", headers={"Authorization": "Bearer forged"})
        assert refused.status_code in (401, 403), refused.text
    for base in cluster.inboxes:
        assert httpx.get(f"{base}/api/me").status_code == 429
    phase("shared counters")
    memory = {
        name: sum(_rss_mib(pid) for pid in processes_with(f"RUJUKAN_HOME={part.home}"))
        for name, part in cluster.parts.items()
        if part.process.poll() is None
    }
    print(
        f"\nmemory (RSS, MiB): {', '.join(f'{k} {v:.0f}' for k, v in memory.items())}"
        f"\nscale-out: {REFERRALS} referrals, {sum(cluster.acted.values())} actions, "
        f"{len(outbox)} notices, {len(sweeps)} sweep runs; up in {cluster.startup_seconds:.0f} s, "
        f"phases: {', '.join(phases)}"
    )
