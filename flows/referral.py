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
from datetime import datetime, timedelta
from typing import Annotated

from prefect import flow, task
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import ArtifactCreate, VariableCreate, VariableUpdate
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
    Operator,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import ArtifactSort
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import suspend_flow_run
from prefect.runtime import flow_run as runtime_flow_run
from prefect.states import Cancelled, Completed, Suspended
from prefect.utilities.callables import parameter_schema
from pydantic import Field
from sqlmodel import Session, func, select

from models.actions import advance, find_referral, steps_of
from models.audit import AuditEntry
from models.catalog import load_catalog
from models.clock import utcnow
from models.database import engine_for, transaction
from models.deadline import duration_text, local_time_text
from models.referral import REFERENCE_ALPHABET, Referral, ReferralStatus
from models.settings import Settings, get_settings
from models.step import OPEN, Step
from models.vocabulary import AuditAction
from notifications.relay import relay_now

log = logging.getLogger(__name__)

REFERRAL_FLOW = "referral"
REFERRAL_DEPLOYMENT = "referral"
WATERMARK_VARIABLE = "rujukan_audit_synced"
# A run Scheduled, Pending or Running for longer than this is stuck (a Resume takes seconds once
# the runner polls): the next catch-up puts it back, so a forced "Running" cannot freeze a view.
STUCK_AFTER = timedelta(minutes=10)
REPAIR_CHUNK = 200  # run ids per filter request
REFERENCE_PATTERN = f"^RJK-[{REFERENCE_ALPHABET}]{{4}}-[{REFERENCE_ALPHABET}]{{2}}$"
# The referral deployment's only parameter: a reference code, nothing else fits through it.
Reference = Annotated[
    str,
    Field(
        pattern=REFERENCE_PATTERN,
        description="The referral's reference code, e.g. RJK-7QK2-M9. The run only mirrors the "
        "case database; nothing typed here changes a referral.",
    ),
]


def artifact_key(reference: str) -> str:
    """The referral's artifact key: lowercase letters, digits and dashes (referral-rjk-7qk2-m9)."""
    return f"referral-{reference.lower()}"


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
def referral_flow(reference: Reference):
    """Reconcile one referral with the case database, bring its run up to date, suspend again.

    Only the referral's own run (a manager's Resume) reconciles and suspends. A run started from
    the deployment by hand (the UI's Run, the API) brings the referral's own run up to date and
    ends Cancelled: it never suspends, so no second run stands for the referral, and nothing
    typed into it reaches the case database.
    """

    settings = get_settings()
    engine = engine_for(settings.resolved_database_url)
    this_run = str(runtime_flow_run.get_id())
    with Session(engine) as session:
        referral = find_referral(session, reference)
        referral_id, own = referral.id, referral.flow_run_id == this_run
    assert referral_id is not None
    if not own:
        with get_client(sync_client=True) as client:
            sync_referrals(settings, [referral_id], client)
        return Cancelled(
            message="not this referral's run: runs of the referral deployment are made by "
            "Rujukan; use Resume on the referral's own run"
        )
    with transaction(engine) as session:
        referral = find_referral(session, reference)
        # Idempotent and decided by the case database alone: what any engine call would do.
        advance(session, referral=referral, catalog=load_catalog(settings), now=utcnow())
        status = referral.status
    relay_now(settings, referral_ids=[referral_id])
    with get_client(sync_client=True) as client:
        sync_referrals(settings, [referral_id], client, running_run=this_run)
    if status == ReferralStatus.active:
        # A fresh key each time: a re-used key would return at once instead of suspending.
        suspend_flow_run(timeout=None, key=uuid.uuid4().hex)
        return None
    # A closed referral's run ends as the referral did (a Retry in the UI cannot reopen it).
    return _desired_state(status)


# --- keeping runs current -----------------------------------------------------------------------


def ensure_referral_deployment(client: SyncPrefectClient) -> uuid.UUID:
    """The `referral/referral` deployment's id, registering it if no serve has yet."""

    try:
        return client.read_deployment_by_name(f"{REFERRAL_FLOW}/{REFERRAL_DEPLOYMENT}").id
    except ObjectNotFound:
        flow_id = client.create_flow(referral_flow)
        # The same parameter schema `rujukan serve` registers, enforced by the server from the
        # start: a run from this deployment takes a reference code and nothing else.
        return client.create_deployment(
            flow_id=flow_id,
            name=REFERRAL_DEPLOYMENT,
            description="Created by Rujukan; `rujukan serve` serves it.",
            parameter_openapi_schema=parameter_schema(referral_flow).model_dump(),
            enforce_parameter_schema=True,
        )


def _desired_state(status: ReferralStatus):

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
    stuck_after: timedelta = STUCK_AFTER,
) -> str:
    """Bring one referral's flow run up to date with `view`; return the run's id."""

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
    # Scheduled, Pending or Running: a Resume on its way through the runner, left alone unless
    # it has been stuck there far longer than a Resume takes.
    busy = (
        state is not None
        and state.type in (StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED)
        and state.timestamp is not None
        and utcnow() - state.timestamp < stuck_after
    )
    if (
        str(run_id) != running_run
        and not busy
        and (state is None or state.type != desired.type or state.name != desired.name)
    ):
        # The case database owns the state; the run only mirrors it (a manager's Cancel in the
        # UI is undone at the next sync or sweep; a referral is cancelled only through Rujukan).
        client.set_flow_run_state(run_id, desired, force=True)
    return str(run_id)


def sync_referrals(
    settings: Settings,
    referral_ids: list[int],
    client: SyncPrefectClient,
    running_run: str | None = None,
    stuck_after: timedelta = STUCK_AFTER,
) -> int:
    """Bring the runs of these referrals up to date; record new run ids. Returns how many."""
    if not referral_ids:
        return 0
    engine = engine_for(settings.resolved_database_url)
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        referrals = session.exec(
            select(Referral).where(Referral.id.in_(sorted(set(referral_ids))))  # type: ignore[union-attr]
        ).all()
        views = [referral_view(session, r, settings.timezone, now) for r in referrals]
    deployment_id = ensure_referral_deployment(client)
    new_ids: dict[int, str] = {}
    for view in views:
        run_id = sync_view(client, view, deployment_id, running_run, stuck_after)
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
        last_seq = session.exec(select(func.max(AuditEntry.seq))).one() or 0
        if not 0 <= synced <= last_seq:
            # The watermark is a Prefect variable anyone with the UI can edit: one beyond the
            # audit trail would hide every later change, so it starts again from the beginning.
            synced = 0
        rows = session.exec(
            select(AuditEntry.seq, AuditEntry.referral_id)
            .where(AuditEntry.seq > synced)
            .order_by(AuditEntry.seq)
            .limit(limit * 40)
        ).all()
    if not rows:
        return repair_runs(settings, client)
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
    return total + repair_runs(settings, client)


def repair_runs(
    settings: Settings, client: SyncPrefectClient, stuck_after: timedelta = STUCK_AFTER
) -> int:
    """Put back the runs a Prefect user changed: return how many referrals were synced again.

    Prefect's UI and API let anyone who reaches them cancel, fail, complete, delete or force the
    state of a referral's run. The case database decides: an active referral's run is Suspended,
    a closed one's is Completed or Cancelled. Reads scale with the open caseload, not history.
    """

    engine = engine_for(settings.resolved_database_url)
    with Session(engine) as session:
        active = dict(
            session.exec(
                select(Referral.flow_run_id, Referral.id).where(
                    Referral.status == ReferralStatus.active,
                    Referral.flow_run_id.is_not(None),  # type: ignore[union-attr]
                )
            ).all()
        )
    wrong: set[str] = set()
    run_ids = sorted(active)
    for start in range(0, len(run_ids), REPAIR_CHUNK):
        chunk = [uuid.UUID(i) for i in run_ids[start : start + REPAIR_CHUNK]]
        # Not Suspended: cancelled, failed, completed, crashed, stuck, or renamed by force.
        off = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=chunk),
                state=FlowRunFilterState(
                    operator=Operator.or_,
                    type=FlowRunFilterStateType(not_any_=[StateType.PAUSED]),
                    name=FlowRunFilterStateName(not_any_=["Suspended"]),
                ),
            ),
            limit=REPAIR_CHUNK,
        )
        wrong |= {str(r.id) for r in off if _stuck_or_off(r, stuck_after)}
        # Deleted in the UI: sync_view makes the referral a new run.
        if client.count_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk))
        ) < len(chunk):
            present = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=REPAIR_CHUNK
            )
            wrong |= {str(i) for i in chunk} - {str(r.id) for r in present}
    # Other runs of the referral flow that are not closed: a closed referral's run Suspended or
    # forced back to Running. (One forced from Cancelled to Completed keeps showing it closed;
    # finding those would read every closed run at every sweep.)
    candidates = client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[REFERRAL_FLOW])),
        flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(not_any_=[uuid.UUID(i) for i in run_ids]) if run_ids else None,
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(not_any_=[StateType.COMPLETED, StateType.CANCELLED])
            ),
        ),
        limit=REPAIR_CHUNK,  # the API gives at most 200 a call
    )
    by_id = {str(r.id): r for r in candidates}
    with Session(engine) as session:
        closed = session.exec(
            select(Referral).where(Referral.flow_run_id.in_(list(by_id)))  # type: ignore[union-attr]
        ).all()
        ids = [active[i] for i in wrong]
        for referral in closed:
            desired = _desired_state(referral.status)
            state = by_id[referral.flow_run_id].state  # type: ignore[index]
            if state is None or state.type != desired.type or state.name != desired.name:
                if _stuck_or_off(by_id[referral.flow_run_id], stuck_after):  # type: ignore[index]
                    ids.append(referral.id)  # type: ignore[arg-type]
    # Runs that are no referral's own (started from the deployment by hand) are left as they
    # are: they end by themselves and never change a referral.
    return sync_referrals(settings, sorted(ids), client, stuck_after=stuck_after) if ids else 0


def _stuck_or_off(run, stuck_after: timedelta) -> bool:
    """False for a run on its way through the runner (a Resume), true for any other state."""

    state = run.state
    if state is None or state.type not in (
        StateType.RUNNING,
        StateType.PENDING,
        StateType.SCHEDULED,
    ):
        return True
    return state.timestamp is None or utcnow() - state.timestamp >= stuck_after
