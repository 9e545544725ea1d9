"""The deadline sweep as a Prefect flow: notices, events, tags and the overdue tables."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prefect import flow, get_run_logger, tags, task
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactCollectionFilter,
    ArtifactCollectionFilterKey,
    ArtifactFilter,
    ArtifactFilterKey,
    DeploymentFilter,
    DeploymentFilterName,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.events import emit_event
from prefect.runtime import flow_run as runtime_flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from sqlmodel import Session, func, select

from flows.referral import Interrupted, catch_up, sync_referrals
from flows.server import prefect_at
from flows.wake import relay_running
from models.audit import AuditEntry
from models.catalog import load_catalog
from models.clock import utcnow
from models.database import engine_for, transaction
from models.deadline import duration_text, local_time_text, zone_abbreviation
from models.outbox import OutboxMessage, OutboxStatus
from models.referral import Referral
from models.settings import OVERDUE_ARTIFACT, Settings, get_settings
from models.sweep import Notice, open_steps_due_by, sweep
from notifications.relay import relay_now

log = logging.getLogger(__name__)

OUTBOX_ARTIFACT = "outbox-problems"
SWEEP_FLOW = "deadline-sweep"
SWEEP_TAG = "sweep"
# Keys of earlier versions: one card per agency (overdue-<slug>) and per referral
# (referral-<reference>) crowded the Artifacts page; their cards are deleted at the next sweep.
RETIRED_KEY_PREFIXES = ("overdue-", "referral-")
EVENTS = {"overdue": "rujukan.step.overdue", "escalated": "rujukan.step.escalated"}


@dataclass
class SweepResult:
    """What one sweep pass did: notices queued, messages sent, and whether Prefect saw it."""

    notices: list[Notice] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    prefect: bool = False

    def counts(self) -> dict[str, int]:
        """Notices by kind."""
        out: dict[str, int] = {}
        for notice in self.notices:
            out[notice.event] = out.get(notice.event, 0) + 1
        return out


def sweep_and_relay(settings: Settings, now: datetime | None = None) -> SweepResult:
    """Queue the due notices in one transaction, then send them: the sweep without Prefect."""
    moment = now or utcnow()
    engine = engine_for(settings.resolved_database_url)
    catalog = load_catalog(settings)
    with transaction(engine) as session:
        notices = sweep(session, catalog=catalog, now=moment)
    # The relay `rujukan serve` runs sends them within its tick; the sweep never waits on a
    # channel. Without one (a sweep run by hand), it sends within the command's budget.
    if relay_running(settings):
        return SweepResult(notices=notices)
    report = relay_now(
        settings,
        referral_ids=sorted({n.referral_id for n in notices}) or None,
        budget=settings.send_budget_seconds,
    )
    return SweepResult(notices=notices, sent=report.sent, failed=report.failed)


def overdue_rows(settings: Settings, now: datetime) -> list[dict[str, str | float]]:
    """Every open step past due, by agency: reference, step, agency, due (local), hours
    overdue, escalated."""
    engine = engine_for(settings.resolved_database_url)
    with Session(engine) as session:
        steps = open_steps_due_by(session, now)
        references = {
            r.id: r.reference
            for r in session.exec(
                select(Referral).where(Referral.id.in_({s.referral_id for s in steps}))
            )
        }  # type: ignore[union-attr]
    rows = []
    for s in sorted(steps, key=lambda s: (s.agency, s.due_at)):
        assert s.due_at is not None
        rows.append(
            {
                "reference": references[s.referral_id],
                "step": s.key if s.instance == 1 else f"{s.key}#{s.instance}",
                "agency": s.agency,
                "due": local_time_text(s.due_at, settings.timezone),
                # One decimal: the table changes every six minutes, not at every pass.
                "hours overdue": round((now - s.due_at).total_seconds() / 3600, 1),
                "escalated": "yes" if s.escalated else "no",
            }
        )
    return rows


def overdue_markdown(rows: list[dict], zone: str, run_ids: dict[str, str]) -> str:
    """The overdue table as Markdown, for the page a manager bookmarks: Prefect's UI shows the
    newest version's description at the top of /artifacts/key/overdue-steps. Each reference
    links to its referral's run."""
    if not rows:
        return f"**Nothing overdue.** (times in {zone})"
    lines = [
        f"**{len(rows)} open step{'s' if len(rows) != 1 else ''} past due** (times in {zone}; "
        "earlier versions below)",
        "",
        "| reference | step | agency | due | overdue by | escalated |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        reference = str(r["reference"])
        run = run_ids.get(reference)
        shown = f"[{reference}](/runs/flow-run/{run})" if run else reference
        hours = float(r["hours overdue"])
        late = duration_text(hours * 3600) if hours >= 0.1 else "under 6 min"
        lines.append(
            f"| {shown} | {r['step']} | {r['agency']} | {r['due']} | {late} | {r['escalated']} |"
        )
    return "\n".join(lines)


def outbox_problem_rows(settings: Settings) -> list[dict[str, str | int]]:
    """Messages that keep failing or gave up: reference, event, recipient, status, attempts."""
    engine = engine_for(settings.resolved_database_url)
    with Session(engine) as session:
        messages = session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.status.in_([OutboxStatus.failed, OutboxStatus.dead]))  # type: ignore[attr-defined]
            .order_by(OutboxMessage.id)
            .limit(500)
        ).all()
        references = {
            r.id: r.reference
            for r in session.exec(
                select(Referral).where(Referral.id.in_({m.referral_id for m in messages}))
            )
        }  # type: ignore[union-attr]
    # No error texts: a channel's error can carry its URL, and URLs can carry tokens.
    return [
        {
            "reference": references.get(m.referral_id, "-"),
            "event": m.event.value,
            "recipient": m.recipient,
            "status": m.status.value,
            "attempts": m.attempts,
            "next attempt": local_time_text(m.next_attempt_at, settings.timezone)
            if m.status == OutboxStatus.failed
            else "-",
        }
        for m in messages
    ]


# --- in Prefect -----------------------------------------------------------------------------------


def emit_notice_events(notices: list[Notice], run_ids: dict[int, str]) -> int:
    """Emit rujukan.step.overdue / .escalated: the reference as resource, codes as labels."""

    count = 0
    for notice in notices:
        name = EVENTS.get(notice.event)
        if name is None:
            continue
        related = []
        if run_id := run_ids.get(notice.referral_id):
            related.append(
                {
                    "prefect.resource.id": f"prefect.flow-run.{run_id}",
                    "prefect.resource.role": "referral-run",
                }
            )
        emit_event(
            name,
            resource={
                "prefect.resource.id": notice.reference,
                "prefect.resource.name": notice.reference,
                "agency": notice.agency,
                "pathway": notice.pathway,
                "step": notice.step,
            },
            related=related,
            payload={"due": notice.due_at.isoformat(), "recipient": notice.recipient},
        )
        count += 1
    return count


def publish_tables(client, settings: Settings, now: datetime) -> list[str]:
    """Rewrite overdue-steps and outbox-problems where they changed; return the keys written.

    One key for every overdue step (a manager bookmarks /artifacts/key/overdue-steps), sorted by
    agency; the per-referral tables live in each referral's run.
    """

    rows = overdue_rows(settings, now)
    zone = zone_abbreviation(settings.timezone)
    references = sorted({str(r["reference"]) for r in rows})
    run_ids = _run_ids_by_reference(settings, references)
    tables: dict[str, tuple[list, str]] = {
        OVERDUE_ARTIFACT: (rows, overdue_markdown(rows, zone, run_ids)),
        OUTBOX_ARTIFACT: (
            outbox_problem_rows(settings),
            "Messages that keep failing (retried) or gave up (dead): fix the channel.",
        ),
    }
    latest = {
        a.key: a.data
        for a in client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(
                key=ArtifactCollectionFilterKey(any_=list(tables))
            )
        )
    }
    written = []
    for key, (table, description) in tables.items():
        if key not in latest and not table and key != OVERDUE_ARTIFACT:
            continue
        if _same_table(latest.get(key), table):
            continue
        create_table_artifact(table, key=key, description=description)
        written.append(key)
    retire_artifact_keys(client)
    return written


def retire_artifact_keys(client) -> list[str]:
    """Delete every version of the keys earlier versions wrote per agency and per referral."""
    retired = []
    for prefix in RETIRED_KEY_PREFIXES:
        for collection in client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(like_=prefix))
        ):
            key = collection.key
            if key in (OVERDUE_ARTIFACT, OUTBOX_ARTIFACT) or not key.startswith(prefix):
                continue
            for artifact in client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
            ):
                client.delete_artifact(artifact.id)
            retired.append(key)
    return retired


def _run_ids_by_reference(settings: Settings, references: list[str]) -> dict[str, str]:
    engine = engine_for(settings.resolved_database_url)
    with Session(engine) as session:
        rows = session.exec(
            select(Referral.reference, Referral.flow_run_id).where(
                Referral.reference.in_(references)  # type: ignore[attr-defined]
            )
        ).all()
    return {reference: run for reference, run in rows if run}


def _same_table(stored, table: list[dict]) -> bool:

    if stored is None:
        return False
    if isinstance(stored, str):
        try:
            stored = json.loads(stored)
        except ValueError:
            return False
    return stored == json.loads(json.dumps(table))


def flow_run_ids(settings: Settings, referral_ids: list[int]) -> dict[int, str]:
    """The Prefect run id of each referral that has one."""
    engine = engine_for(settings.resolved_database_url)
    with Session(engine) as session:
        rows = session.exec(
            select(Referral.id, Referral.flow_run_id).where(Referral.id.in_(referral_ids))
        ).all()  # type: ignore[union-attr]
    return {rid: run for rid, run in rows if rid is not None and run}


@task(name="sweep-and-relay", persist_result=False)
def sweep_task(at: datetime) -> SweepResult:
    """Queue the due reminders, overdue notices and escalations, then send them."""
    return sweep_and_relay(get_settings(), at)


@task(name="update-referral-runs", persist_result=False)
def update_runs_task(referral_ids: list[int]) -> int:
    """Update the affected referral runs; catch up on changes made while Prefect was down."""
    settings = get_settings()
    with get_client(sync_client=True) as client:
        return sync_referrals(settings, referral_ids, client) + catch_up(settings, client)


@task(name="publish-overdue-tables", persist_result=False)
def publish_task(at: datetime) -> list[str]:
    """Rewrite the overdue-steps and outbox-problems tables that changed; name the sweep runs
    the scheduler made ahead."""
    with get_client(sync_client=True) as client:
        written = publish_tables(client, get_settings(), at)
        name_scheduled_sweeps(client)
        return written


def sweep_name(moment: datetime) -> str:
    """A sweep run's name: its scheduled time, e.g. sweep-2026-12-07T02:00Z."""
    return f"sweep-{moment.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


def sweep_run_name() -> str:
    """The name of a running sweep: the time it was scheduled for (a run started by hand: now),
    the same name `name_scheduled_sweeps` gave it while it waited."""
    scheduled = runtime_flow_run.scheduled_start_time
    return sweep_name(scheduled if isinstance(scheduled, datetime) else utcnow())


def name_scheduled_sweeps(client) -> int:
    """Give the sweep runs Prefect's scheduler made ahead of time (random names such as
    'crimson-tapir') the name they will run under; return how many were renamed."""
    waiting = client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[SWEEP_FLOW])),
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[SWEEP_FLOW])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        ),
        limit=200,
    )
    renamed = 0
    for run in waiting:
        moment = run.expected_start_time or run.next_scheduled_start_time
        if moment is None or run.name == sweep_name(moment):
            continue
        client.update_flow_run(run.id, name=sweep_name(moment))
        renamed += 1
    return renamed


def sweep_pass(moment: datetime) -> dict[str, int]:
    """One pass as of `moment`, run inside a flow: notices, messages, run tags, events, tables."""
    settings = get_settings()
    result = sweep_task(moment)
    ids = sorted({n.referral_id for n in result.notices})
    updated = update_runs_task(ids)
    emitted = emit_notice_events(result.notices, flow_run_ids(settings, ids))
    written = publish_task(moment)
    summary = {
        **result.counts(),
        "sent": result.sent,
        "failed": result.failed,
        "runs_updated": updated,
        "events": emitted,
        "tables": len(written),
    }
    # Counts only: the log is stored in Prefect's database like everything else.
    get_run_logger().info("sweep: %s", ", ".join(f"{k}={v}" for k, v in summary.items()))
    return summary


@flow(name=SWEEP_FLOW, flow_run_name=sweep_run_name, persist_result=False)
def deadline_sweep() -> dict[str, int]:
    """One pass of the deadline sweep as of now: notices, messages, run tags, events, tables.

    The served flow takes no parameters: a sweep "as of" another moment, run from the Prefect
    UI or API, would record overdue notices and escalations early (or late).
    """
    return sweep_pass(utcnow())


@flow(name=SWEEP_FLOW, flow_run_name=sweep_run_name, persist_result=False)
def deadline_sweep_at(at: datetime) -> dict[str, int]:
    """One pass as of `at`, for tests and benchmarks in this process; never served."""
    return sweep_pass(at)


# --- in `rujukan serve`'s own process ---------------------------------------------------------

FOLLOW_SECONDS = 2.0  # how often the follower looks for new audit entries between sweeps
AGAIN = 10.0  # seconds the sweeper waits after a failure (Prefect down or slow) before trying
# Referrals whose history a catch-up call between sweeps writes; before each call, every
# referral without a run gets one (so a new batch waits for one such call, not for a backlog).
FOLLOW_LIMIT = 100


def run_sweeper(settings: Settings, url: str, stop: threading.Event) -> None:
    """`rujukan serve`'s sweeper, until `stop`: a deadline sweep every
    RUJUKAN_SWEEP_INTERVAL_SECONDS, and between sweeps Prefect's view kept up with the case
    database.

    Each sweep is a `deadline-sweep` flow run of this process (named, tagged and logged as a
    served one would be), not a new process a minute. Between sweeps, every FOLLOW_SECONDS, one
    query asks whether the audit trail grew; if it did, `catch_up` gives every referral without
    a run its run (tags and state, in bulk), then syncs what changed, FOLLOW_LIMIT referrals at
    a time (their histories and tables). So a batch of 500 shows in Prefect within seconds, a
    second batch need not wait for the first one's histories, and a backlog after a restart is
    caught up behind the ready line, never before it. This thread is the one writer
    of the catch-up watermark: commands and the web inbox leave their referrals' runs to it
    while serve runs (flows.wake.after_commit), so an older view is never written after a newer.
    """
    engine = engine_for(settings.resolved_database_url)
    # The sweep runs' logs go to Prefect (each run's Logs tab), not to serve's console.
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).propagate = False
    next_sweep = time.monotonic()
    quiet_at: int | None = None  # the audit seq up to which Prefect was found caught up
    made: dict = {}  # runs made ahead of their history, by referral id (open_missing_runs)
    # A sync flow's heartbeat thread costs a second at the end of every run; the sweep's own
    # run is in Prefect's database the moment it starts, and a crash shows as this thread's log.
    with (
        prefect_at(url, settings),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        get_client(sync_client=True) as client,
    ):
        while not stop.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + settings.sweep_interval_seconds
                    made.clear()  # the sweep's catch-up reads the runs it syncs
                    with tags(SWEEP_TAG):
                        deadline_sweep()
                    continue
                with Session(engine) as session:
                    last = session.exec(select(func.max(AuditEntry.seq))).one() or 0
                if last != quiet_at:
                    synced = catch_up(
                        settings, client, FOLLOW_LIMIT, repair=False, made=made, stop=stop
                    )
                    if synced == 0:
                        quiet_at = last  # nothing was left beyond the watermark
                    continue  # more may wait: no pause while catching up
            except Interrupted:
                break  # serve is stopping: the watermark stays, the next start goes on
            except Exception as exc:  # noqa: BLE001 - Prefect down or slow: try again shortly
                log.warning("sweeper: %s; trying again in %.0f s", type(exc).__name__, AGAIN)
                stop.wait(AGAIN)
                continue
            stop.wait(FOLLOW_SECONDS)
