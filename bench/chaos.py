"""The crash-safety harness: agencies act through the web API while `rujukan serve` is killed.

    python -m bench.chaos --transitions 100 --random-kills 10 --seed 1

A temporary home gets synthetic referrals, every agency's channel points at a local receiver,
and `rujukan serve` starts on free ports. Agencies accept and complete steps through the JSON
API while serve dies: at chosen points (RUJUKAN_CRASH_AT: before a commit, after a commit
before the send, after a send before the mark) and by SIGKILL of all its processes at seeded
random moments. After each death whatever is left is killed, serve starts again and the
interrupted request is retried ("already done" means its commit had landed). At the end the
relay settles and the accounting is checked: every transition recorded exactly once, every
message delivered at least once and at most once more per kill, none left claimed, and every
referral's Prefect run showing what the case database says. Prints figures, never personal data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from bench.common import processes_of
from bench.receiver import Receiver
from models.settings import PROJECT_ROOT, Settings

RUJUKAN = str(Path(sys.executable).parent / "rujukan")
POINTS = ("before-commit", "after-commit", "after-send")
RANDOM = "random"
PATHWAY = "tppo-dewasa"
LEASE_SECONDS = 30  # the shortest lease the settings allow: a send cut short returns in 30 s
REQUEST_TIMEOUT = 60.0
UP_MARK = "Ctrl-C stops everything"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Serve:
    """`rujukan serve` on its own ports and home, started and killed by the harness."""

    home: Path
    env: dict[str, str]
    web: str
    prefect_api: str
    process: subprocess.Popen | None = None
    starts: int = 0

    def start(self, crash_at: str | None) -> bool:
        """Start serve (armed with RUJUKAN_CRASH_AT if given); False if it died while starting."""
        env = dict(self.env)
        if crash_at:
            env["RUJUKAN_CRASH_AT"] = crash_at
        self.starts += 1
        out = self.home / "logs" / f"serve-{self.starts:03d}.out"
        out.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [RUJUKAN, "serve"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if UP_MARK in out.read_text(errors="replace"):
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.2)
        raise RuntimeError(f"serve did not come up within 180 s (see {out})")

    def alive(self) -> bool:
        """True while serve's own process runs."""
        return self.process is not None and self.process.poll() is None

    def wait_dead(self, timeout: float) -> bool:
        """Wait up to `timeout` s for serve's process to end; True if it did."""
        if self.process is None:
            return True
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill_all(self) -> None:
        """SIGKILL serve's process group, then every process of this home that is left."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # The Prefect server has a session of its own: a crashed serve leaves it (the flow runs
        # of serve's runner thread are in serve's group).
        for _ in range(50):
            left = processes_of(self.home)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        if self.process is not None:
            self.process.wait()

    def stop(self) -> None:
        """Ctrl-C, as an operator would; anything left after 60 s is killed."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGINT)
            self.wait_dead(60)
        self.kill_all()


@dataclass
class Action:
    """One step transition the harness asks for, through the agency's token."""

    reference: str
    step_id: int
    agency: str
    verb: str  # accept or complete

    def body(self) -> dict[str, str]:
        return {"outcome": "served"} if self.verb == "complete" else {}


@dataclass
class Figures:
    """What a chaos run did and found."""

    seed: int
    referrals: int = 0
    transitions: int = 0
    retried: int = 0
    landed_before_the_crash: int = 0  # retries answered "already done"
    kills: Counter[str] = field(default_factory=Counter)
    deaths_while_starting: int = 0
    starts: int = 0
    messages: int = 0
    received: int = 0
    duplicates: int = 0
    most_copies: int = 0
    seconds: float = 0.0
    settle_seconds: float = 0.0
    unreached: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The figures, one per line: counts, codes and seconds only."""
        kills = ", ".join(f"{k} {v}" for k, v in sorted(self.kills.items())) or "none"
        return [
            f"seed {self.seed}: {self.transitions} step transitions on {self.referrals} referrals "
            f"in {self.seconds:.0f} s ({self.starts} starts of serve)",
            f"kills: {sum(self.kills.values())} ({kills}); {self.deaths_while_starting} while "
            "serve was starting",
            f"requests cut by a kill and retried: {self.retried}, of which answered 'already done' "
            f"(the commit had landed): {self.landed_before_the_crash}",
            f"messages: {self.messages} queued, {self.received} received, {self.duplicates} "
            f"duplicates (at most {self.most_copies} copies of one), settled in "
            f"{self.settle_seconds:.0f} s",
            *(f"crash point never reached: {p}" for p in self.unreached),
            f"accounting: {len(self.problems) or 'no'} problems",
            *(f"  problem: {p}" for p in self.problems),
        ]


class Chaos:
    """One chaos run in a temporary home."""

    def __init__(
        self, *, transitions: int, random_kills: int, seed: int, home: Path, say=print
    ) -> None:
        self.transitions = transitions
        self.random_kills = random_kills
        self.rng = random.Random(seed)
        self.figures = Figures(seed=seed)
        self.home = home
        self.say = say
        self.sink = Receiver()
        self.tokens: dict[str, str] = {}
        self.acted: Counter[tuple[int, str]] = Counter()  # (step id, verb) confirmed
        self.http = httpx.Client(timeout=REQUEST_TIMEOUT)
        self.settings = Settings(
            home=home,
            secret_key="chaos-harness-key",  # type: ignore[arg-type]
            apprise_config=home / "channels.yaml",
            allowed_webhook_hosts="127.0.0.1",
            relay_lease_seconds=LEASE_SECONDS,
            crash_at=None,
        )
        web_port, prefect_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUJUKAN_"))}
        env.update(
            RUJUKAN_HOME=str(home),
            RUJUKAN_SECRET_KEY="chaos-harness-key",
            RUJUKAN_APPRISE_CONFIG=str(home / "channels.yaml"),
            RUJUKAN_ALLOWED_WEBHOOK_HOSTS="127.0.0.1",
            RUJUKAN_RELAY_LEASE_SECONDS=str(LEASE_SECONDS),
            RUJUKAN_RELAY_INTERVAL_SECONDS="2",
            RUJUKAN_PREFECT_PORT=str(prefect_port),
            RUJUKAN_WEB_PORT=str(web_port),
            RUJUKAN_MAILBOX_PORT=str(free_port()),
            RUJUKAN_BASE_URL=f"http://127.0.0.1:{web_port}",
            RUJUKAN_SERVE_LIMIT="2",
        )
        self.serve = Serve(
            home=home,
            env=env,
            web=f"http://127.0.0.1:{web_port}",
            prefect_api=f"http://127.0.0.1:{prefect_port}/api",
        )

    # --- setting up -----------------------------------------------------------------------------

    def cli(self, *args: str) -> str:
        """Run a `rujukan` command on this home; its output."""
        result = subprocess.run(
            [RUJUKAN, *args],
            env=self.serve.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rujukan {args[0]} failed with status {result.returncode}")
        return result.stdout

    def prepare(self) -> None:
        """Channels to the sink, tokens for every agency, and enough synthetic referrals."""
        self.home.mkdir(parents=True, exist_ok=True)
        directory = yaml.safe_load(self.settings.agencies_file.read_text())
        slugs = [a["slug"] for a in directory["agencies"]]
        (self.home / "channels.yaml").write_text(self.sink.channel_config(slugs))
        self.cli("init")
        from datetime import timedelta

        from models.access import GrantKind, issue_grant
        from models.catalog import load_catalog
        from models.database import engine_for, transaction

        catalog = load_catalog(self.settings)
        with transaction(engine_for(self.settings.resolved_database_url)) as session:
            for slug in slugs:  # as `rujukan access issue --agency SLUG` does, without 13 starts
                _, self.tokens[slug] = issue_grant(
                    session,
                    kind=GrantKind.agency,
                    agency=slug,
                    holder="chaos",
                    issued_by="chaos",
                    now=datetime.now(UTC),
                    catalog=catalog,
                    lifetime=timedelta(days=1),
                )
        # tppo-dewasa with every option gives 11 steps, 22 transitions a referral.
        count = max(2, math.ceil(self.transitions * 2 / 22))
        intake = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())
        lines = []
        for n in range(count):
            intake["person"] = {
                "name": f"Chaos Palsu {n}",
                "sex": "F",
                "birth_year": 2000,
                "nationality": "ID",
                "languages": ["id"],
            }
            lines.append(json.dumps(intake))
        batch = self.home / "batch.jsonl"
        batch.write_text("\n".join(lines) + "\n")
        self.cli("launch", "--batch", str(batch), "--json")  # before serve: no kill can cut it
        self.figures.referrals = count

    # --- acting ---------------------------------------------------------------------------------

    def next_action(self) -> Action | None:
        """A seeded choice among the open steps: accept a ready one, complete an accepted one."""
        from sqlmodel import Session, select

        from models.database import engine_for
        from models.referral import Referral
        from models.step import Step, StepStatus

        with Session(engine_for(self.settings.resolved_database_url)) as session:
            rows = session.exec(
                select(Step, Referral.reference)
                .join(Referral, Referral.id == Step.referral_id)
                .where(Step.status.in_([StepStatus.ready, StepStatus.accepted]))  # type: ignore[attr-defined]
                .order_by(Step.id)
            ).all()
        if not rows:
            return None
        step, reference = self.rng.choice(rows)
        verb = "accept" if step.status == StepStatus.ready else "complete"
        return Action(reference, step.id, step.agency, verb)

    def send(self, action: Action) -> dict | None:
        """POST the action; its answer, or None if serve died under it."""
        step = f"referrals/{action.reference}/steps/{action.step_id}"
        url = f"{self.serve.web}/api/{step}/{action.verb}"
        try:
            response = self.http.post(
                url,
                json=action.body(),
                headers={"Authorization": f"Bearer {self.tokens[action.agency]}"},
            )
        except httpx.TransportError:
            return None
        if response.status_code != 200:
            self.figures.problems.append(
                f"{action.verb} step {action.step_id}: HTTP {response.status_code}"
            )
            return {"changed": False}
        return response.json()

    def act(self, action: Action, *, retry: bool) -> bool:
        """Send one action; True if answered (recorded), False if serve died under it."""
        answer = self.send(action)
        if answer is None:
            return False
        if retry:
            self.figures.retried += 1
            if not answer.get("changed"):
                self.figures.landed_before_the_crash += 1
        elif not answer.get("changed"):
            self.figures.problems.append(
                f"{action.verb} step {action.step_id}: nothing changed on the first try"
            )
        self.acted[(action.step_id, action.verb)] += 1
        self.figures.transitions += 1
        return True

    # --- the run --------------------------------------------------------------------------------

    def died(self, kind: str, where: str) -> None:
        """Serve died (or is killed now): count the kill, kill what is left of it."""
        process = self.serve.process
        status = process.poll() if process is not None else None
        how = "killed by the harness" if status is None else f"died with status {status}"
        self.figures.kills[kind] += 1
        self.serve.kill_all()
        self.say(f"           {kind}: serve {how}, {where}")

    def start(self, crash_at: str | None) -> bool:
        """Start serve; False if it died while starting (an armed point reached early)."""
        self.figures.starts += 1
        return self.serve.start(crash_at)

    def segment(self, kind: str, quota: int, interrupted: Action | None) -> Action | None:
        """Run until one death of `kind`; return the request it cut, if any."""
        crash_at = None
        if kind in POINTS:
            n = self.rng.randint(1, 3) if kind == "after-send" else self.rng.randint(4, 16)
            crash_at = f"{kind}:{n}"
        if not self.start(crash_at):
            self.figures.deaths_while_starting += 1
            self.died(kind, "while starting")
            return interrupted
        if interrupted is not None and not self.act(interrupted, retry=True):
            self.serve.wait_dead(10)
            self.died(kind, "under the retried request")
            return interrupted
        if kind == RANDOM:
            for _ in range(self.rng.randint(0, quota)):
                action = self.next_action()
                if action is None or not self.act(action, retry=False):
                    break
            return self.kill_during_next_request()
        # An armed point: act until serve dies by it (idle relay passes commit too).
        deadline = None
        while True:
            if not self.serve.alive():
                break
            action = self.next_action()
            if action is None or self.figures.transitions >= self.transitions * 3:
                deadline = deadline or time.monotonic() + 60
                if time.monotonic() > deadline:
                    self.figures.unreached.append(crash_at or kind)
                    self.serve.kill_all()
                    return None
                time.sleep(1)
                continue
            if not self.act(action, retry=False):
                self.serve.wait_dead(10)
                self.died(kind, f"under a request ({action.verb})")
                return action
        self.died(kind, "between requests")
        return None

    def kill_during_next_request(self) -> Action | None:
        """SIGKILL serve's processes a random 0-500 ms into the next request; the request cut."""
        action = self.next_action()
        delay = self.rng.uniform(0.0, 0.5)
        if action is None:
            time.sleep(delay)
            self.died(RANDOM, "idle")
            return None
        answers: list[dict | None] = []
        sender = threading.Thread(target=lambda: answers.append(self.send(action)))
        sender.start()
        time.sleep(delay)
        self.died(RANDOM, f"{delay * 1000:.0f} ms into a request ({action.verb})")
        sender.join()
        if answers and answers[0] is not None:
            answer = answers[0]  # answered before the kill: it counts as done
            if not answer.get("changed"):
                self.figures.problems.append(
                    f"{action.verb} step {action.step_id}: nothing changed on the first try"
                )
            self.acted[(action.step_id, action.verb)] += 1
            self.figures.transitions += 1
            return None
        return action

    def run(self) -> Figures:
        """Prepare, act and kill, settle, and check the accounting."""
        started = time.monotonic()
        self.prepare()
        plan = list(POINTS) + [RANDOM] * self.random_kills
        self.rng.shuffle(plan)
        quota = max(1, self.transitions // (len(plan) + 1))
        interrupted: Action | None = None
        try:
            for kind in plan:
                self.say(
                    f"  [{time.monotonic() - started:5.0f} s] {self.figures.transitions:3d} "
                    f"transitions; next kill: {kind}"
                )
                interrupted = self.segment(kind, quota, interrupted)
            if not self.start(None):
                raise RuntimeError("serve died while starting unarmed")
            if interrupted is not None:
                self.act(interrupted, retry=True)
            while self.figures.transitions < self.transitions:
                action = self.next_action()
                if action is None:
                    break
                if not self.act(action, retry=False):
                    self.figures.problems.append("serve died unarmed")
                    break
            settle_from = time.monotonic()
            self.settle()
            self.figures.settle_seconds = time.monotonic() - settle_from
            self.cli("sweep", "--json")  # a final sweep: its catch-up brings Prefect up to date
            self.check()
        finally:
            self.serve.stop()
            self.sink.close()
            self.http.close()
        self.figures.seconds = time.monotonic() - started
        return self.figures

    # --- the accounting -------------------------------------------------------------------------

    def settle(self, timeout: float = LEASE_SECONDS * 3 + 60) -> None:
        """Wait until no message is pending, failed or sending (a cut send's lease runs out)."""
        from sqlmodel import Session, select

        from models.database import engine_for
        from models.outbox import OutboxMessage, OutboxStatus

        engine = engine_for(self.settings.resolved_database_url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with Session(engine) as session:
                open_rows = session.exec(
                    select(OutboxMessage.id).where(
                        OutboxMessage.status.in_(
                            [
                                OutboxStatus.pending,
                                OutboxStatus.failed,  # type: ignore[attr-defined]
                                OutboxStatus.sending,
                            ]
                        )
                    )
                ).all()
            if not open_rows:
                return
            time.sleep(1)

    def check(self) -> None:
        """The accounting: transitions once, messages at least once, Prefect reconciled."""
        from sqlmodel import Session, col, select

        from models.audit import AuditEntry
        from models.database import engine_for
        from models.outbox import OutboxMessage, OutboxStatus
        from models.referral import Referral
        from tests.accounting import accounting_problems

        problems = self.figures.problems
        engine = engine_for(self.settings.resolved_database_url)
        with Session(engine) as session:
            problems += accounting_problems(session)
            # Every transition the harness saw land is in the audit trail once, and no other.
            audited = Counter(
                (e.step_id, {"accepted": "accept", "completed": "complete"}[e.action])
                for e in session.exec(
                    select(AuditEntry).where(AuditEntry.action.in_(["accepted", "completed"]))
                )  # type: ignore[attr-defined]
            )
            for key in sorted(set(audited) | set(self.acted), key=str):
                if audited[key] != 1 or self.acted[key] != 1:
                    problems.append(
                        f"step {key[0]} {key[1]}: audited {audited[key]} times, "
                        f"confirmed {self.acted[key]} times"
                    )
            rows = session.exec(select(OutboxMessage)).all()
            references = {
                r.id: r.reference
                for r in session.exec(
                    select(Referral).where(col(Referral.id).in_({m.referral_id for m in rows}))
                )
            }
            # A row is delivered by a single message or as a row of a digest: both are counted
            # by recipient and reference (the receiver reads them from the subject or the rows).
            expected: Counter[tuple[str, str]] = Counter()
            attempts: Counter[tuple[str, str]] = Counter()
            for row in rows:
                if row.status != OutboxStatus.sent or row.lease_until is not None:
                    problems.append(f"message {row.id} left {row.status.value}")
                key = (row.recipient, references[row.referral_id])
                expected[key] += 1
                attempts[key] += row.attempts
        kills = sum(self.figures.kills.values())
        received = self.sink.rows
        self.figures.messages = sum(expected.values())
        self.figures.received = sum(received.values())
        for key in set(expected) | set(received):
            got, want = received[key], expected[key]
            if got < want:
                problems.append(f"a message to {key[0]} lost: {got} received of {want}")
            if got > min(attempts[key], want * (1 + kills)):
                # The key holds an agency and a reference code, never personal data.
                problems.append(
                    f"{key[1]} to {key[0]} received {got} times: {want} "
                    f"queued, {attempts[key]} attempts, {kills} kills"
                )
            self.figures.duplicates += max(0, got - want)
            if want:
                self.figures.most_copies = max(self.figures.most_copies, math.ceil(got / want))
        problems += self.prefect_problems()

    def prefect_problems(self, timeout: float = 90) -> list[str]:
        """Each referral has one run, the recorded one, tagged as flows.referral computes."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName
        from prefect.settings import PREFECT_API_URL, temporary_settings
        from sqlmodel import Session, select

        from flows.referral import REFERRAL_FLOW, referral_view
        from models.database import engine_for
        from models.referral import Referral

        engine = engine_for(self.settings.resolved_database_url)
        deadline = time.monotonic() + timeout
        found: list[str] = []
        while time.monotonic() < deadline:
            found = []
            now = datetime.now(UTC)
            with Session(engine) as session:
                want = {
                    r.reference: (r.flow_run_id, referral_view(session, r, "UTC", now).tags)
                    for r in session.exec(select(Referral))
                }
            with (
                temporary_settings(updates={PREFECT_API_URL: self.serve.prefect_api}),
                get_client(sync_client=True) as client,
            ):
                runs = client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[REFERRAL_FLOW])), limit=200
                )
            by_name = Counter(r.name for r in runs)
            for run in runs:
                if run.name not in want:
                    continue
                run_id, tags = want[run.name]
                if str(run.id) != run_id:
                    found.append(f"{run.name}: run {run.id} is not the one recorded")
                elif sorted(run.tags) != tags:
                    found.append(f"{run.name}: run tags {sorted(run.tags)}, database says {tags}")
            found += [f"{ref}: {by_name[ref]} runs" for ref in want if by_name[ref] != 1]
            if not found:
                return []
            time.sleep(3)
        return found


def run_chaos(
    *, transitions: int, random_kills: int, seed: int, home: Path | None = None, say=print
) -> Figures:
    """One chaos run (in a temporary home unless given); its figures."""
    if home is not None:
        return Chaos(
            transitions=transitions, random_kills=random_kills, seed=seed, home=home, say=say
        ).run()
    with tempfile.TemporaryDirectory(prefix="rujukan-chaos-") as folder:
        return Chaos(
            transitions=transitions,
            random_kills=random_kills,
            seed=seed,
            home=Path(folder) / "var",
            say=say,
        ).run()


def main(argv: list[str] | None = None) -> int:
    """Run the harness from the command line; exit status 1 if the accounting found a problem."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--transitions", type=int, default=100, help="step transitions to drive")
    parser.add_argument(
        "--random-kills",
        type=int,
        default=10,
        help="SIGKILLs at random moments, besides one at each crash point",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="keep the run's home (databases, logs) here instead of a temp folder",
    )
    args = parser.parse_args(argv)
    figures = run_chaos(
        transitions=args.transitions,
        random_kills=args.random_kills,
        seed=args.seed,
        home=args.home.resolve() if args.home else None,
    )
    print("\n".join(figures.lines()))
    return 1 if figures.problems or figures.unreached else 0


if __name__ == "__main__":
    sys.exit(main())
