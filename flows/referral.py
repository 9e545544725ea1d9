"""A referral in Prefect: one flow run per referral, kept current through the API, no process.

The run is named by the reference code and created under the `referral/referral` deployment
(Running for an instant, so that it has a start time, then suspended: Suspended, Overdue or
Escalated). Every change (launch, an agency's action, the sweep) brings it up to date from the
case database: tags, state, one task run per history entry (some also an event), and a markdown
artifact of its steps without a key. A manager's Resume in the UI executes `referral_flow`,
which reconciles and suspends again.
docs/architecture-prefect.md has the measurements behind this shape. Only reference codes, step
keys, agency slugs, codes and times reach Prefect.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from prefect import flow, task
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import (
    ArtifactCreate,
    DeploymentFlowRunCreate,
    VariableCreate,
    VariableUpdate,
)
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterType,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.sorting import ArtifactSort, FlowRunSort
from prefect.events import emit_event
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import suspend_flow_run
from prefect.runtime import flow_run as runtime_flow_run
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from prefect.states import Cancelled, Completed, Paused, Running, to_state_create
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
from models.step import OPEN, Step, StepStatus
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
SYNC_WORKERS = 4  # referrals synced at once: their round trips overlap; more only collide in SQLite
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


# Every referral run carries this tag: Runs -> Tags -> `referral` lists referrals only.
REFERRAL_TAG = "referral"
# What an active referral's run is called; all three are Prefect's PAUSED type (a suspended run
# holding no process, resumable), so none reads as failed, crashed or late.
WAITING, OVERDUE, ESCALATED = "Suspended", "Overdue", "Escalated"
# History entries that are also events, like the sweep's rujukan.step.overdue and .escalated.
HISTORY_EVENTS = {
    AuditAction.declined: "rujukan.step.declined",
    AuditAction.extension_requested: "rujukan.step.extension-requested",
    AuditAction.rerouted: "rujukan.step.rerouted",
}


@dataclass
class HistoryItem:
    """One history entry as Prefect records it: a task run, and for some an event."""

    key: str  # the task run's dynamic key, audit-<seq>
    name: str
    at: datetime
    event: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    payload: dict[str, str] = field(default_factory=dict)


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
    state_name: str = WAITING
    state_message: str = ""
    history: list[HistoryItem] = field(default_factory=list)


def referral_tags(
    referral: Referral, steps: list[Step], now: datetime, actions: set[str] | None = None
) -> list[str]:
    """What a manager filters on: `referral`, pathway:<id>, agency:<slug> per agency with an open
    step or a declined one, and the flags overdue, escalated, extension-requested (now) and
    declined, rerouted (ever, from the history `actions`)."""
    actions = actions or set()
    open_steps = [s for s in steps if s.status in OPEN]
    declined = [s for s in steps if s.status == StepStatus.declined]
    tags = {REFERRAL_TAG, f"pathway:{referral.pathway_id}"}
    tags |= {f"agency:{s.agency}" for s in open_steps + declined}
    if any(s.overdue or (s.due_at is not None and s.due_at <= now) for s in open_steps):
        tags.add("overdue")
    if any(s.escalated for s in open_steps):
        tags.add("escalated")
    if any(s.extension_until is not None for s in open_steps):
        tags.add("extension-requested")
    if declined or AuditAction.declined in actions:
        tags.add("declined")
    if AuditAction.rerouted in actions:
        tags.add("rerouted")
    return sorted(tags)


def state_of(tags: list[str], steps: list[Step]) -> tuple[str, str]:
    """An active referral's run state name and message: what it waits for, what is late."""
    name = ESCALATED if "escalated" in tags else OVERDUE if "overdue" in tags else WAITING
    waiting = sorted({s.agency for s in steps if s.status in OPEN})
    parts = [f"waiting for {', '.join(waiting)}" if waiting else "no step open"]
    reroute = sorted({s.key for s in steps if s.awaits_reroute})
    if reroute:
        parts.append(f"declined, to re-route: {', '.join(reroute)}")
    if "extension-requested" in tags:
        parts.append("extension requested")
    if name != WAITING:
        parts.append(f"{name.lower()}: see the overdue-steps artifact")
    return name, "; ".join(parts)


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


def history_item(entry: AuditEntry, steps_by_id: dict[int, Step], pathway: str) -> HistoryItem:
    """The task run of one history entry, with its event for a decline, an extension request or
    a re-route: codes, keys and slugs only (a reason is a code, never free text)."""
    item = HistoryItem(f"audit-{entry.seq}", history_name(entry, steps_by_id), entry.at)
    step = steps_by_id.get(entry.step_id) if entry.step_id is not None else None
    event = HISTORY_EVENTS.get(entry.action)  # type: ignore[call-overload]
    if event is None or step is None:
        return item
    detail = entry.detail or {}
    item.event = event
    item.labels = {"agency": step.agency, "pathway": pathway, "step": step.key}
    if entry.action == AuditAction.rerouted:
        item.labels.update(agency=str(detail.get("from", step.agency)), to=str(detail.get("to")))
    item.payload = {
        k: str(detail[k]) for k in ("reason", "until", "from", "to") if detail.get(k) is not None
    }
    return item


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
    tags = referral_tags(referral, steps, now, {e.action for e in entries})
    name, message = state_of(tags, steps)
    return ReferralView(
        referral_id=referral.id,
        reference=referral.reference,
        pathway=referral.pathway_id,
        status=referral.status,
        flow_run_id=referral.flow_run_id,
        tags=tags,
        table=steps_table(referral, steps, tz, now),
        state_name=name,
        state_message=message,
        history=[history_item(e, by_id, referral.pathway_id) for e in entries],
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


def _desired_state(status: ReferralStatus, name: str = WAITING, message: str = ""):
    """The state the case database wants the run in.

    An active referral's run is PAUSED with the reschedule flag of a suspended run (Resume
    works, no process is held), named Suspended, Overdue or Escalated, its message saying what
    it waits for: Prefect's dashboard and the run's page show what matters without a failed or
    late run.
    """
    if status == ReferralStatus.active:
        return Paused(
            timeout_seconds=None,
            reschedule=True,
            name=name,
            message=message or "waiting for the next agency action",
        )
    if status == ReferralStatus.completed:
        return Completed(message="referral completed")
    return Cancelled(message="referral cancelled")


def _view_state(view: ReferralView):
    return _desired_state(view.status, view.state_name, view.state_message)


def _unchanged(state, desired) -> bool:
    return (
        state is not None
        and state.type == desired.type
        and state.name == desired.name
        and (desired.type != StateType.PAUSED or _resumable(state))
        and (desired.type != StateType.PAUSED or state.message == desired.message)
    )


def _resumable(state) -> bool:
    """A PAUSED state a Resume re-runs: the reschedule flag of a suspended run. (The shipped
    automation's Escalated lacks it; Rujukan's own state is put back at the next sweep.)"""
    return bool(state.state_details and state.state_details.pause_reschedule)


CREATE_CHUNK = 100  # runs a bulk create makes at most (Prefect's limit)
STATE_CHUNK = 50  # runs a bulk state change puts at most (Prefect's limit)


def open_runs(
    client: SyncPrefectClient, views: list[ReferralView], deployment_id: uuid.UUID
) -> dict[int, tuple[FlowRun, bool]]:
    """Each referral's run, and whether it was made now, in a few calls for any number.

    Recorded runs are read 200 a call. The missing ones are made 100 a call, named and tagged,
    Running for an instant (Prefect then records a start time: a run without one reads as
    "Scheduled for ... (late)" in the UI forever), then put in their states 50 a call. History
    and table follow in `sync_view`. A run made by an earlier call that did not record its id is
    found by its idempotency key, and is not "made now".
    """
    opened: dict[int, tuple[FlowRun, bool]] = {}
    recorded = read_runs(client, [v.flow_run_id for v in views if v.flow_run_id])
    for view in views:
        run = recorded.get(view.flow_run_id or "")
        if run is not None and run.start_time is None and run.state is not None:
            if run.state.type == StateType.PAUSED:
                # A run an earlier version made Suspended directly has no start time, and Prefect
                # cannot be given one in the past: it is made anew.
                client.delete_flow_run(run.id)
                run = None
        if run is not None:
            opened[view.referral_id] = (run, False)
    missing = [v for v in views if v.referral_id not in opened]
    if not missing:
        return opened
    mark = uuid.uuid4().hex  # in the context of the runs this call makes, to tell them apart
    ids = _create_runs(client, deployment_id, missing, mark)
    runs = read_runs(client, list(ids.values()))
    made = {rid for rid, run_id in ids.items() if runs[run_id].context.get("rujukan") == mark}
    by_state: dict[tuple[str, str], list[ReferralView]] = {}
    for view in missing:
        if view.referral_id in made:
            by_state.setdefault((view.state_name, view.state_message), []).append(view)
    for group in by_state.values():
        taken = _put_state(client, [ids[v.referral_id] for v in group], _view_state(group[0]))
        for run_id, state in taken.items():
            runs[run_id].state = state
    for view in missing:
        run_id = ids[view.referral_id]
        opened[view.referral_id] = (runs[run_id], view.referral_id in made)
    return opened


def _create_runs(
    client: SyncPrefectClient, deployment_id: uuid.UUID, views: list[ReferralView], mark: str
) -> dict[int, str]:
    """Make these referrals' runs, 100 a call; returns each referral's run id."""
    by_id = {v.referral_id: v for v in views}

    def create(chunk: list[int]) -> dict[int, str]:
        answer = client.request(
            "POST",
            "/deployments/{id}/create_flow_run/bulk",  # type: ignore[arg-type]
            path_params={"id": deployment_id},
            json=[_run_create(by_id[k], mark) for k in chunk],
        ).json()["results"]
        return {
            k: result["flow_run_id"]
            for k, result in zip(chunk, answer, strict=True)
            if result["status"] == "CREATED"
        }

    return _in_bulk(list(by_id), CREATE_CHUNK, create)


def _put_state(client: SyncPrefectClient, run_ids: list[str], state) -> dict[str, State]:
    """Put these runs in `state` (forced), 50 a call; returns each run's new state."""
    body = to_state_create(state).model_dump(mode="json", serialize_as_any=True)

    def put(chunk: list[str]) -> dict[str, dict]:
        answer = client.request(
            "POST",
            "/flow_runs/bulk_set_state",  # type: ignore[arg-type]
            json={
                "flow_runs": FlowRunFilter(
                    id=FlowRunFilterId(any_=[uuid.UUID(i) for i in chunk])
                ).model_dump(mode="json", exclude_unset=True),
                "state": body,
                "force": True,
                "limit": STATE_CHUNK,
            },
        ).json()["results"]
        return {r["flow_run_id"]: r["state"] for r in answer if r["status"] == "ACCEPT"}

    taken = _in_bulk(run_ids, STATE_CHUNK, put)
    return {run_id: State.model_validate(data) for run_id, data in taken.items()}


def _run_create(view: ReferralView, mark: str) -> dict:
    """The bulk create of one referral's run: its reference, tags and a Running state."""
    return DeploymentFlowRunCreate(
        name=view.reference,
        parameters={"reference": view.reference},
        tags=view.tags,
        state=to_state_create(Running(message="recorded by Rujukan")),
        idempotency_key=f"referral-{view.reference}",
        context={"rujukan": mark},
    ).model_dump(mode="json", exclude_unset=True)


def _in_bulk(keys: list, size: int, send: Callable[[list], dict]) -> dict:
    """Send `keys` to one of Prefect's bulk endpoints `size` at a time: `send(chunk)` gives the
    result of each key written. A bulk call reports a write that collided in Prefect's SQLite
    database (locked) per run, not as a 503: those keys go again after a short wait, as in
    `_retry_soon`. Returns every key's result."""
    done: dict = {}
    pending = keys
    for attempt in range(1, SYNC_RETRIES + 1):
        for start in range(0, len(pending), size):
            done |= send(pending[start : start + size])
        pending = [k for k in pending if k not in done]
        if not pending:
            return done
        time.sleep(_busy_wait(attempt))
    raise RuntimeError(
        f"Prefect did not write {len(pending)} runs in {SYNC_RETRIES} tries; the next catch-up "
        "tries again"
    )


def read_runs(client: SyncPrefectClient, run_ids: list[str]) -> dict[str, FlowRun]:
    """The runs of these ids that exist, by id (200 a call); an id that is no UUID is absent."""
    wanted = []
    for run_id in run_ids:
        try:
            wanted.append(uuid.UUID(run_id))
        except ValueError:
            continue  # Prefect's database was replaced, or the id is damaged: rebuilt
    found: dict[str, FlowRun] = {}
    for start in range(0, len(wanted), REPAIR_CHUNK):
        chunk = wanted[start : start + REPAIR_CHUNK]
        for run in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=REPAIR_CHUNK
        ):
            found[str(run.id)] = run
    return found


def sync_view(
    client: SyncPrefectClient,
    view: ReferralView,
    opened: tuple[FlowRun, bool],
    running_run: str | None = None,
    stuck_after: timedelta = STUCK_AFTER,
) -> str:
    """Bring one referral's flow run up to date with `view`; return the run's id.

    `opened`: its run as `open_runs` gave it, and whether it was made then (no history, no
    table yet, nothing to read).
    """

    desired = _view_state(view)
    run, made = opened
    run_id = run.id
    if sorted(run.tags) != view.tags:
        client.update_flow_run(run_id, tags=view.tags)

    recorded = set()
    if not made:
        recorded = {
            t.dynamic_key
            for t in client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
                limit=len(view.history) + 100,
            )
        }
    for item in view.history:
        if item.key in recorded:
            continue
        client.create_task_run(
            history, run_id, dynamic_key=item.key, name=item.name, state=Completed()
        )
        if item.event is not None:
            emit_history_event(view, item, run_id)

    latest = []
    if not made:
        latest = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]),
                type=ArtifactFilterType(any_=["markdown"]),
            ),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    if not latest or latest[0].data != view.table:
        # No key: the table is the run's own (its Artifacts tab), not one more card on the
        # Artifacts page; every overdue step is in the one table `overdue-steps`.
        client.create_artifact(
            ArtifactCreate(
                type="markdown",
                data=view.table,
                flow_run_id=run_id,
                description=f"Steps of {view.reference}; each due time carries its zone. "
                "From the case database.",
            )
        )

    state = run.state
    # Scheduled, Pending or Running: a Resume on its way through the runner, left alone unless
    # it has been stuck there far longer than a Resume takes (or it is the instant of creation).
    busy = (
        state is not None
        and state.type in (StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED)
        and state.message != "recorded by Rujukan"
        and state.timestamp is not None
        and utcnow() - state.timestamp < stuck_after
    )
    if str(run_id) != running_run and not busy and not _unchanged(state, desired):
        # The case database owns the state; the run only mirrors it (a manager's Cancel in the
        # UI is undone at the next sync or sweep; a referral is cancelled only through Rujukan).
        client.set_flow_run_state(run_id, desired, force=True)
    return str(run_id)


def emit_history_event(view: ReferralView, item: HistoryItem, run_id: uuid.UUID) -> None:
    """rujukan.step.declined, .extension-requested or .rerouted for one history entry.

    The reference is the resource, as for the sweep's overdue and escalated events; the id is
    derived from the entry, so a rebuilt Prefect database records the same event once.
    """
    emit_event(
        item.event or "",
        resource={
            "prefect.resource.id": view.reference,
            "prefect.resource.name": view.reference,
            **item.labels,
        },
        related=[
            {
                "prefect.resource.id": f"prefect.flow-run.{run_id}",
                "prefect.resource.role": "referral-run",
            }
        ],
        payload=item.payload,
        occurred=item.at,
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"rujukan:{view.reference}:{item.key}"),
    )


def _retry_soon(response) -> None:
    """Prefect's server on SQLite answers a write that collided with another one (SQLITE_BUSY)
    with a 503 and no Retry-After, and Prefect's client then waits 2, 4, 8 s before it tries
    again: with eight syncs at once most of a mass catch-up went in those waits (100 referrals:
    50 such answers, 53 s). A collision is over in milliseconds: the same backoff, doubling
    from 0.1 s (at most 2 s), jittered so that colliding writers part."""
    if response.status_code != 503 or "Retry-After" in response.headers:
        return
    tries = response.request.extensions.get("rujukan_busy", 0) + 1
    response.request.extensions["rujukan_busy"] = tries
    response.headers["Retry-After"] = f"{_busy_wait(tries):.3f}"


def _busy_wait(tries: int) -> float:
    """Seconds to wait before try `tries` + 1 of a write Prefect's SQLite database refused."""
    return min(2.0, 0.05 * 2**tries) * random.uniform(0.5, 1.5)  # noqa: S311 - not a secret


# The clients of concurrent syncs: httpx runs the hook before Prefect's client reads the answer;
# short waits, so more of them (Prefect's default is 5).
SYNC_HTTPX = {"event_hooks": {"response": [_retry_soon]}}
SYNC_RETRIES = 20


class Interrupted(Exception):
    """A sync stopped at its caller's request before it was done (the watermark stays: the
    next catch-up does its referrals again)."""


def sync_referrals(
    settings: Settings,
    referral_ids: list[int],
    client: SyncPrefectClient,
    running_run: str | None = None,
    stuck_after: timedelta = STUCK_AFTER,
    made: dict[int, tuple[FlowRun, bool]] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Bring the runs of these referrals up to date; record new run ids. Returns how many.

    `made`: runs `open_missing_runs` made for referrals, as yet without history; those of these
    referrals are taken out of it and not read again. `stop`, once set, ends the histories'
    sync between two referrals (Interrupted): serve stops within a second, not a call later.
    """
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

    def in_shares(work: Callable[[SyncPrefectClient, list[ReferralView]], dict]) -> dict:
        """`work(client, share)` over the views: each referral is a handful of round trips to
        the API, where the server mostly waits, so SYNC_WORKERS shares go at once, each on a
        client of its own thread, in the caller's Prefect context."""
        shares = [views[i::SYNC_WORKERS] for i in range(min(SYNC_WORKERS, len(views)))]
        if len(shares) <= 1:
            return work(client, views)

        def on_own_client(share: list[ReferralView]) -> dict:
            with (
                temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: SYNC_RETRIES}),
                get_client(sync_client=True, httpx_settings=SYNC_HTTPX) as worker,
            ):
                return work(worker, share)

        done: dict = {}
        with ThreadPoolExecutor(max_workers=len(shares), thread_name_prefix="sync") as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, on_own_client, share)
                for share in shares
            ]
            for future in futures:
                done |= future.result()
        return done

    # First every referral gets its run, tagged and in its state, in a few bulk calls: a batch
    # shows in Prefect whole before any run gets its history and table (most of the calls).
    known = made if made is not None else {}
    opened = {
        v.referral_id: known.pop(v.referral_id)
        for v in views
        if v.referral_id in known and str(known[v.referral_id][0].id) == v.flow_run_id
    }
    opened |= open_runs(client, [v for v in views if v.referral_id not in opened], deployment_id)
    _record_run_ids(engine, views, opened)

    def histories(worker: SyncPrefectClient, share: list[ReferralView]) -> dict:
        done = {}
        for view in share:
            if stop is not None and stop.is_set():
                raise Interrupted
            opened_run = opened[view.referral_id]
            done[view.referral_id] = sync_view(worker, view, opened_run, running_run, stuck_after)
        return done

    in_shares(histories)
    return len(views)


def _record_run_ids(
    engine, views: list[ReferralView], opened: dict[int, tuple[FlowRun, bool]]
) -> None:
    """Record the run id of each referral whose run is new (or was made anew)."""
    new_ids = {
        v.referral_id: str(opened[v.referral_id][0].id)
        for v in views
        if str(opened[v.referral_id][0].id) != v.flow_run_id
    }
    if new_ids:
        with transaction(engine) as session:
            for referral_id, run_id in new_ids.items():
                referral = session.get(Referral, referral_id)
                if referral is not None:
                    referral.flow_run_id = run_id
                    session.add(referral)


OPEN_LIMIT = 1_000  # referrals `open_missing_runs` gives a run a call


def open_missing_runs(
    settings: Settings,
    client: SyncPrefectClient,
    made: dict[int, tuple[FlowRun, bool]],
    limit: int = OPEN_LIMIT,
) -> int:
    """Give every referral that has no run yet its run (name, tags, state), in bulk, ahead of
    any history: a new batch shows in Prefect while an earlier one still gets its histories.
    The runs made go into `made` for the sync that follows (it skips reading them). Returns
    how many referrals it looked at."""
    engine = engine_for(settings.resolved_database_url)
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        referrals = session.exec(
            select(Referral)
            .where(Referral.flow_run_id.is_(None))  # type: ignore[union-attr]
            .order_by(Referral.id)  # type: ignore[arg-type]
            .limit(limit)
        ).all()
        views = [referral_view(session, r, settings.timezone, now) for r in referrals]
    if not views:
        return 0
    opened = open_runs(client, views, ensure_referral_deployment(client))
    _record_run_ids(engine, views, opened)
    made.update({rid: run for rid, run in opened.items() if run[1]})
    return len(views)


def catch_up(
    settings: Settings,
    client: SyncPrefectClient,
    limit: int = 200,
    repair: bool = True,
    made: dict[int, tuple[FlowRun, bool]] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Sync the referrals changed since the last catch-up (the audit trail is the change log).

    This is how an action committed while Prefect was down, or a large batch, reaches Prefect;
    with Prefect's database lost, the watermark is gone too and every referral is rebuilt. At
    most `limit` referrals a call, so one call stays short (their syncs overlap, SYNC_WORKERS
    at a time); the next goes on. Before that, every referral without a run gets one, in bulk
    (`open_missing_runs`): a new batch shows in Prefect at the next call, however many histories
    wait. `made`: the runs made so but not yet synced, kept by a caller that calls again (serve's
    sweeper), so that they are not read again. With `repair`, it then puts back runs a Prefect
    user changed (reads every active referral's run: the sweep does it, serve's follower between
    sweeps does not). `stop`: see `sync_referrals`.
    Returns how many referrals were synced.
    """

    engine = engine_for(settings.resolved_database_url)
    with Session(engine) as session:
        first = session.get(AuditEntry, 1)
    if first is None:
        return 0
    made = {} if made is None else made
    open_missing_runs(settings, client, made)
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
        return repair_runs(settings, client) if repair else 0
    ids: list[int] = []
    last = synced
    for seq, referral_id in rows:
        if referral_id is not None and referral_id not in ids:
            if len(ids) == limit:
                break  # this entry's referral waits for the next call
            ids.append(referral_id)
        last = seq
    total = sync_referrals(settings, ids, client, made=made, stop=stop)
    mark = {"chain": chain, "seq": last}
    if variable is None:
        client.create_variable(VariableCreate(name=WATERMARK_VARIABLE, value=mark))
    else:
        client.update_variable(VariableUpdate(name=WATERMARK_VARIABLE, value=mark))
    return total + (repair_runs(settings, client) if repair else 0)


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
        # The state name each active referral's run should show (Suspended, Overdue, Escalated).
        now = utcnow()
        steps = session.exec(
            select(Step).where(
                Step.referral_id.in_(list(active.values())),  # type: ignore[attr-defined]
                Step.status.in_(OPEN),  # type: ignore[attr-defined]
            )
        ).all()
    late: dict[int, str] = {}
    for step in steps:
        if step.escalated:
            late[step.referral_id] = ESCALATED
        elif step.overdue or (step.due_at is not None and step.due_at <= now):
            late.setdefault(step.referral_id, OVERDUE)
    wrong: set[str] = set()
    run_ids = sorted(active)
    for start in range(0, len(run_ids), REPAIR_CHUNK):
        chunk = [uuid.UUID(i) for i in run_ids[start : start + REPAIR_CHUNK]]
        present = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=REPAIR_CHUNK
        )
        # Deleted in the UI: open_runs makes the referral a new run.
        wrong |= {str(i) for i in chunk} - {str(r.id) for r in present}
        for run in present:
            # Cancelled, failed, completed, crashed, stuck, renamed, or late by now.
            name = late.get(active[str(run.id)], WAITING)
            state = run.state
            right = (
                state is not None
                and state.type == StateType.PAUSED
                and state.name == name
                and _resumable(state)
            )
            if not right and _stuck_or_off(run, stuck_after):
                wrong.add(str(run.id))
    # Other runs of the referral flow that are not closed: a closed referral's run Suspended or
    # forced back to Running. (One forced from Cancelled to Completed keeps showing it closed;
    # finding those would read every closed run at every sweep.) Page by page, 200 a call (the
    # API's most): runs started by hand, or another case database's, must not hide them.
    others = FlowRunFilter(
        id=FlowRunFilterId(not_any_=[uuid.UUID(i) for i in run_ids]) if run_ids else None,
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(not_any_=[StateType.COMPLETED, StateType.CANCELLED])
        ),
    )
    by_id: dict[str, FlowRun] = {}
    page = None
    while page is None or len(page) == REPAIR_CHUNK:
        page = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[REFERRAL_FLOW])),
            flow_run_filter=others,
            sort=FlowRunSort.ID_DESC,
            limit=REPAIR_CHUNK,
            offset=len(by_id),
        )
        by_id |= {str(r.id): r for r in page}
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
