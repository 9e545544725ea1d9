"""A referral in Prefect: one flow run per referral, kept current through the API, no process.

The run is named by the reference code and created Suspended under the `referral/referral`
deployment. Every change (launch, an agency's action, the sweep) brings it up to date from the
case database: tags, one task run per history entry, and a markdown artifact of its steps. A
manager's Resume in the UI executes `referral_flow`, which reconciles and suspends again.
docs/architecture-prefect.md has the measurements behind this shape. Only reference codes, step
keys, agency slugs, codes and times reach Prefect.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prefect import flow, task
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.flow_runs import suspend_flow_run
from prefect.runtime import flow_run as runtime_flow_run
from sqlmodel import Session, select

from models.audit import AuditEntry
from models.catalog import Catalog, load_catalog
from models.database import engine_for, transaction
from models.deadline import local_time_text
from models.engine import advance, find_referral, steps_of
from models.referral import Referral, ReferralStatus
from models.settings import Settings, get_settings
from models.step import OPEN, Step
from models.vocabulary import AuditAction

log = logging.getLogger(__name__)

REFERRAL_FLOW = "referral"
REFERRAL_DEPLOYMENT = "referral"
WATERMARK_VARIABLE = "rujukan_audit_synced"


def artifact_key(reference: str) -> str:
    """The referral's artifact key: lowercase letters, digits and dashes (referral-rjk-7qk2-m9)."""
    return f"referral-{reference.lower()}"


def duration_text(seconds: float) -> str:
    """'2 d 3 h', '5 h 20 min' or '40 s': how long a step has been overdue."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


@dataclass
class ReferralView:
    """What Prefect shows of one referral: ids, codes and times only."""

    referral_id: int
    reference: str
    pathway: str
    status: ReferralStatus
    flow_run_id: str | None
    tags: list[str]
    table: str
    history: list[tuple[str, str]] = field(default_factory=list)  # (dynamic key, task run name)


def referral_tags(referral: Referral, steps: list[Step], now: datetime) -> list[str]:
    """pathway:<id>, agency:<slug> per agency with an open step, overdue and escalated flags."""
    open_steps = [s for s in steps if s.status in OPEN]
    tags = {f"pathway:{referral.pathway_id}"} | {f"agency:{s.agency}" for s in open_steps}
    if any(s.overdue or (s.due_at is not None and s.due_at <= now) for s in open_steps):
        tags.add("overdue")
    if any(s.escalated for s in open_steps):
        tags.add("escalated")
    return sorted(tags)


def steps_table(referral: Referral, steps: list[Step], tz: str, now: datetime) -> str:
    """The markdown table of the referral's steps: step, agency, status, due (local), overdue by."""
    lines = [
        f"### {referral.reference} · {referral.pathway_id} v{referral.pathway_version} · "
        f"{referral.status.value}",
        "",
        "| step | agency | status | due | overdue by |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in steps:
        name = s.key if s.instance == 1 else f"{s.key}#{s.instance}"
        due = local_time_text(s.due_at, tz) if s.due_at else "-"
        late = "-"
        if s.status in OPEN and s.due_at is not None and s.due_at <= now:
            late = duration_text((now - s.due_at).total_seconds())
            if s.escalated:
                late += " (escalated)"
        lines.append(f"| {name} | {s.agency} | {s.status.value} | {due} | {late} |")
    return "\n".join(lines)


def history_name(entry: AuditEntry, steps_by_id: dict[int, Step]) -> str:
    """A task run name for one history entry: the action, the step key and the agency."""
    step = steps_by_id.get(entry.step_id) if entry.step_id is not None else None
    if step is None:
        return entry.action
    return f"{entry.action} {step.key} · {step.agency}"


def referral_view(session: Session, referral: Referral, tz: str, now: datetime) -> ReferralView:
    """Read what Prefect should show of `referral` from the case database."""
    assert referral.id is not None
    steps = steps_of(session, referral.id)
    by_id = {s.id: s for s in steps if s.id is not None}
    entries = session.exec(
        select(AuditEntry)
        .where(AuditEntry.referral_id == referral.id, AuditEntry.action.in_(AuditAction.history()))  # type: ignore[attr-defined]
        .order_by(AuditEntry.seq)
    ).all()
    return ReferralView(
        referral_id=referral.id,
        reference=referral.reference,
        pathway=referral.pathway_id,
        status=referral.status,
        flow_run_id=referral.flow_run_id,
        tags=referral_tags(referral, steps, now),
        table=steps_table(referral, steps, tz, now),
        history=[(f"audit-{e.seq}", history_name(e, by_id)) for e in entries],
    )


# --- the flow a manager's Resume executes -------------------------------------------------------


@task(name="history", persist_result=False)
def history() -> None:
    """One event of a referral's history; recorded through the API, never executed."""


@flow(name=REFERRAL_FLOW, flow_run_name="{reference}", persist_result=False)
def referral_flow(reference: str) -> None:
    """Reconcile one referral with the case database, bring its run up to date, suspend again."""
    from notifications.relay import relay_now

    settings = get_settings()
    catalog = load_catalog(settings)
    engine = engine_for(settings.resolved_database_url)
    with transaction(engine) as session:
        referral = find_referral(session, reference)
        advance(session, referral=referral, catalog=catalog, now=datetime.now(UTC))
        referral_id, active = referral.id, referral.status == ReferralStatus.active
    assert referral_id is not None
    relay_now(settings, referral_ids=[referral_id])
    with get_client(sync_client=True) as client:
        sync_referrals(settings, [referral_id], client, running_run=str(runtime_flow_run.get_id()))
    if active:
        # A fresh key each time: a re-used key would return at once instead of suspending.
        suspend_flow_run(timeout=None, key=uuid.uuid4().hex)


# --- keeping runs current -----------------------------------------------------------------------


def ensure_referral_deployment(client: SyncPrefectClient) -> uuid.UUID:
    """The `referral/referral` deployment's id, registering it if no serve has yet."""
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(f"{REFERRAL_FLOW}/{REFERRAL_DEPLOYMENT}").id
    except ObjectNotFound:
        flow_id = client.create_flow(referral_flow)
        return client.create_deployment(
            flow_id=flow_id,
            name=REFERRAL_DEPLOYMENT,
            description="Created by Rujukan; `rujukan serve` serves it.",
        )


def _desired_state(status: ReferralStatus):
    from prefect.states import Cancelled, Completed, Suspended

    if status == ReferralStatus.active:
        return Suspended(timeout_seconds=None, message="waiting for the next agency action")
    if status == ReferralStatus.completed:
        return Completed(message="referral completed")
    return Cancelled(message="referral cancelled")


def sync_view(
    client: SyncPrefectClient,
    view: ReferralView,
    deployment_id: uuid.UUID,
    running_run: str | None = None,
) -> str:
    """Bring one referral's flow run up to date with `view`; return the run's id."""
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import ArtifactSort
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Completed

    desired = _desired_state(view.status)
    run = None
    if view.flow_run_id:
        try:
            run = client.read_flow_run(uuid.UUID(view.flow_run_id))
        except (ObjectNotFound, ValueError):
            run = None  # Prefect's database was replaced: rebuild the view
    if run is None:
        run = client.create_flow_run_from_deployment(
            deployment_id,
            parameters={"reference": view.reference},
            name=view.reference,
            tags=view.tags,
            state=desired,
            idempotency_key=f"referral-{view.reference}",
        )
    run_id = run.id
    if sorted(run.tags) != view.tags:
        client.update_flow_run(run_id, tags=view.tags)

    recorded = {
        t.dynamic_key
        for t in client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
            limit=len(view.history) + 100,
        )
    }
    for key, name in view.history:
        if key not in recorded:
            client.create_task_run(history, run_id, dynamic_key=key, name=name, state=Completed())

    key = artifact_key(view.reference)
    latest = client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
        sort=ArtifactSort.CREATED_DESC,
        limit=1,
    )
    if not latest or latest[0].data != view.table:
        client.create_artifact(
            ArtifactCreate(
                key=key,
                type="markdown",
                data=view.table,
                flow_run_id=run_id,
                description=f"Steps of {view.reference}; each due time carries its zone. "
                "From the case database.",
            )
        )

    state = run.state
    busy = state is not None and state.type in (
        StateType.RUNNING,
        StateType.PENDING,
        StateType.SCHEDULED,
    )
    if (
        str(run_id) != running_run
        and not busy
        and (state is None or state.type != desired.type or state.name != desired.name)
    ):
        # The case database owns the state; the run only mirrors it (a manager's Cancel in the
        # UI is undone at the next change, the referral itself is cancelled with the CLI).
        client.set_flow_run_state(run_id, desired, force=True)
    return str(run_id)


def sync_referrals(
    settings: Settings,
    referral_ids: list[int],
    client: SyncPrefectClient,
    running_run: str | None = None,
    catalog: Catalog | None = None,
) -> int:
    """Bring the runs of these referrals up to date; record new run ids. Returns how many."""
    if not referral_ids:
        return 0
    engine = engine_for(settings.resolved_database_url)
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        referrals = session.exec(
            select(Referral).where(Referral.id.in_(sorted(set(referral_ids))))  # type: ignore[union-attr]
        ).all()
        views = [referral_view(session, r, settings.timezone, now) for r in referrals]
    deployment_id = ensure_referral_deployment(client)
    new_ids: dict[int, str] = {}
    for view in views:
        run_id = sync_view(client, view, deployment_id, running_run)
        if run_id != view.flow_run_id:
            new_ids[view.referral_id] = run_id
    if new_ids:
        with transaction(engine) as session:
            for referral_id, run_id in new_ids.items():
                referral = session.get(Referral, referral_id)
                if referral is not None:
                    referral.flow_run_id = run_id
                    session.add(referral)
    return len(views)


def catch_up(settings: Settings, client: SyncPrefectClient, limit: int = 200) -> int:
    """Sync the referrals changed since the last catch-up (the audit trail is the change log).

    This is how an action committed while Prefect was down, or a large batch, reaches Prefect;
    with Prefect's database lost, the watermark is gone too and every referral is rebuilt. At
    most `limit` referrals a call (~1 minute here), so a sweep stays short; the next goes on.
    """
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate

    engine = engine_for(settings.resolved_database_url)
    with Session(engine) as session:
        first = session.get(AuditEntry, 1)
    if first is None:
        return 0
    # The first entry's hash names this case database: a Prefect server that once showed
    # another one (a test server, a restored backup) starts again from the beginning.
    chain = first.hash[:16]
    variable = client.read_variable_by_name(WATERMARK_VARIABLE)
    value = variable.value if variable is not None else None
    synced = int(value["seq"]) if isinstance(value, dict) and value.get("chain") == chain else 0
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEntry.seq, AuditEntry.referral_id)
            .where(AuditEntry.seq > synced)
            .order_by(AuditEntry.seq)
            .limit(limit * 40)
        ).all()
    if not rows:
        return 0
    ids: list[int] = []
    last = synced
    for seq, referral_id in rows:
        if referral_id is not None and referral_id not in ids:
            if len(ids) == limit:
                break  # this entry's referral waits for the next call
            ids.append(referral_id)
        last = seq
    total = sync_referrals(settings, ids, client)
    mark = {"chain": chain, "seq": last}
    if variable is None:
        client.create_variable(VariableCreate(name=WATERMARK_VARIABLE, value=mark))
    else:
        client.update_variable(VariableUpdate(name=WATERMARK_VARIABLE, value=mark))
    return total


def referral_ids_of(session: Session, references: list[str]) -> list[int]:
    """The ids of referrals by reference code."""
    rows = session.exec(select(Referral.id).where(Referral.reference.in_(references))).all()  # type: ignore[attr-defined]
    return [r for r in rows if r is not None]
