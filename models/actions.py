"""The engine's transactions: launch, accept, decline, complete, extend, re-route, cancel.

Each function runs inside the caller's session (one transaction), checks its input before it
writes anything, and writes the step change, its audit entries and its outbox messages together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, text
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, SQLModel, col, select

from models.audit import record, record_many
from models.catalog import Catalog, register_pathways, stored_pathway
from models.condition import CONDITIONS
from models.database import collector_paused
from models.deadline import Duration, parse_duration
from models.errors import AlreadyDone, BadInput, IllegalTransition, NotFound, quoted
from models.intake import Intake
from models.outbox import MessageEvent, dedup_key, enqueue, queued_together
from models.pathway import Pathway, StepSpec
from models.referral import Consent, Person, Referral, ReferralStatus, Urgency, new_reference
from models.seal import Sealer
from models.step import DONE, OPEN, Step, StepStatus, check_transition, sources
from models.vocabulary import AuditAction, CancelCode, DeclineCode, ExtensionCode, OutcomeCode

MAX_EXTENSION = timedelta(days=366)


@dataclass(frozen=True)
class Actor:
    """Who acts: an agency (and the focal point, if known), a coordinator, or the system."""

    kind: str  # "agency" | "coordinator" | "system"
    name: str
    agency: str | None = None

    def __str__(self) -> str:
        if self.kind == "agency":
            return f"agency:{self.agency}" + (f"/{self.name}" if self.name else "")
        return f"{self.kind}:{self.name}"


SYSTEM = Actor("system", "rujukan")


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadInput(f"{what} has no time zone: write it like 2026-12-01T09:00:00+07:00")


# --- launch -------------------------------------------------------------------------------------


def check_consent(intake: Intake, pathway: Pathway, catalog: Catalog) -> None:
    """Refuse a launch that lacks consent for a receiving agency and has no override."""
    for slug in intake.consent.agencies:
        catalog.agency(slug)
    if intake.consent.override is not None:
        return
    missing = sorted(pathway.agencies() - set(intake.consent.agencies))
    if missing:
        raise BadInput(
            f"consent is missing for {', '.join(missing)}: record the victim's consent to share "
            "with every receiving agency of the pathway, or an override with its reason"
        )


def launch(
    session: Session,
    *,
    intake: Intake,
    catalog: Catalog,
    sealer: Sealer,
    now: datetime,
    batch: str | None = None,
) -> Referral:
    """Record a referral with its sealed person, consent and steps; make its first steps ready."""
    return launch_many(
        session, intakes=[intake], catalog=catalog, sealer=sealer, now=now, batch=batch
    )[0]


def launch_many(
    session: Session,
    *,
    intakes: list[Intake],
    catalog: Catalog,
    sealer: Sealer,
    now: datetime,
    batch: str | None = None,
) -> list[Referral]:
    """Launch referrals (one, or a mass rescue's hundreds) in the caller's transaction.

    Every intake is checked before anything is written. Each referral's steps are then planned
    in memory: the first ones made ready (or skipped) by the same rules `advance` applies later.
    The rows are written in their final state, kind by kind, each kind in one statement for the
    whole batch (referrals, people, consents, steps, audit entries, messages): no ORM object is
    made for a row that only needs writing, and no row is written twice. The referrals are read
    back once, as the objects the caller gets.
    """
    _require_aware(now, "now")
    plans = []
    for intake in intakes:
        pathway = catalog.pathway(intake.pathway)
        if pathway.kind != "referral":
            raise BadInput(
                f"pathway '{pathway.id}' holds public reports: launch a victim's pathway instead"
            )
        check_consent(intake, pathway, catalog)
        coordinator_agency = intake.coordinator_agency or catalog.coordinator_agency
        catalog.agency(coordinator_agency)
        plans.append((intake, pathway, coordinator_agency))
    with collector_paused():
        return _write_launches(session, plans, catalog=catalog, sealer=sealer, now=now, batch=batch)


def _write_launches(
    session: Session,
    plans: list[tuple[Intake, Pathway, str]],
    *,
    catalog: Catalog,
    sealer: Sealer,
    now: datetime,
    batch: str | None,
) -> list[Referral]:
    """Write checked launches: (intake, pathway, coordinating agency) each."""
    register_pathways(session, catalog, now)
    session.flush()  # the plain statements below see (and follow) whatever the session holds

    clocks: dict = {}  # due and check times of a step kind, the same for the whole batch
    referral_rows, planned = [], []
    for (intake, pathway, coordinator_agency), reference in zip(
        plans, _unused_references(session, len(plans)), strict=True
    ):
        stored = stored_pathway(session, pathway.id, pathway.version)
        options = intake.case.model_dump()
        steps = [
            _NewStep(key=spec.key, instance=instance, agency=spec.agency, offset=offset)
            for spec in pathway.steps
            for instance, offset in enumerate(spec.repeat or [None], start=1)
        ]
        changes = _ready_or_skip(
            steps, stored, options, intake.urgency, catalog=catalog, now=now, clocks=clocks
        )
        completed = all(key_done(steps, s.key) for s in stored.steps)
        referral_rows.append(
            {
                "reference": reference,
                "pathway_id": pathway.id,
                "pathway_version": pathway.version,
                "urgency": intake.urgency,
                "status": ReferralStatus.completed if completed else ReferralStatus.active,
                "closed_at": now if completed else None,
                "coordinator": intake.coordinator,
                "coordinator_agency": coordinator_agency,
                "options": options,
                **intake.facts.columns(),
                "created_at": now,
                "batch": batch,
            }
        )
        planned.append((steps, changes, completed))
    referral_ids = _insert_returning_ids(session, Referral, referral_rows)

    people, consents, step_rows = [], [], []
    for referral_id, (intake, _, _), (steps, _, _) in zip(
        referral_ids, plans, planned, strict=True
    ):
        people.append(
            {"referral_id": referral_id, "sealed": sealer.seal(intake.person.model_dump())}
        )
        if intake.consent.override:
            consents.append(
                {
                    "referral_id": referral_id,
                    "override": True,
                    "recorded_by": intake.consent.override.by,
                    "reason_sealed": sealer.seal({"reason": intake.consent.override.reason}),
                    "recorded_at": now,
                }
            )
        consents.extend(
            {
                "referral_id": referral_id,
                "agency": slug,
                "recorded_by": intake.coordinator,
                "recorded_at": now,
            }
            for slug in sorted(set(intake.consent.agencies))
        )
        for step in steps:
            step.referral_id = referral_id
            step_rows.append(step.row())
    for model, rows in ((Person, people), (Consent, consents)):
        if rows:
            session.execute(insert(model.__table__), [_with_defaults(model, r) for r in rows])  # type: ignore[attr-defined]
    all_steps = [step for steps, _, _ in planned for step in steps]
    for step, step_id in zip(
        all_steps, _insert_returning_ids(session, Step, step_rows), strict=True
    ):
        step.id = step_id

    # The audit entries in the order launching one referral after another would write them:
    # launched, then each step made ready or skipped, then completed if nothing was left to do.
    entries: list[dict] = []
    with queued_together(session):
        for referral_id, row, (intake, pathway, _), (_, changes, completed) in zip(
            referral_ids, referral_rows, plans, planned, strict=True
        ):
            actor = str(Actor("coordinator", intake.coordinator))
            entries.append(
                dict(
                    actor=actor,
                    action=AuditAction.launched,
                    now=now,
                    referral_id=referral_id,
                    detail={
                        "reference": row["reference"],
                        "pathway": pathway.id,
                        "version": pathway.version,
                        "urgency": intake.urgency.value,
                        "consent_override": bool(intake.consent.override),
                    },
                )
            )
            for step, spec, skipped in changes:
                entries.append(_change_entry(step, spec, skipped, referral_id, actor, now))
                if not skipped:
                    _enqueue_assigned(session, step, referral_id, now)
            if completed:
                entries.append(_completed_entry(referral_id, row["reference"], actor, now))
                _enqueue_completed(session, referral_id, row["coordinator_agency"], now)
        record_many(session, entries)
    loaded = {
        r.id: r for r in session.exec(select(Referral).where(col(Referral.id).in_(referral_ids)))
    }
    return [loaded[i] for i in referral_ids]


@dataclass(slots=True)
class _NewStep:
    """A step of a launch, planned in memory and written once in its final state (no ORM object:
    the rules below read and set the same attributes as on a Step)."""

    key: str
    instance: int
    agency: str
    offset: str | None
    referral_id: int | None = None
    id: int | None = None
    status: StepStatus = StepStatus.pending
    ready_at: datetime | None = None
    due_at: datetime | None = None
    closed_at: datetime | None = None
    next_check_at: datetime | None = None
    replaced_by: int | None = None
    deadline_version: int = 0
    reminded: bool = False
    overdue: bool = False
    escalated: bool = False

    def row(self) -> dict:
        """The step's row for a plain insert."""
        return _with_defaults(
            Step,
            {
                "referral_id": self.referral_id,
                "key": self.key,
                "instance": self.instance,
                "agency": self.agency,
                "offset": self.offset,
                "status": self.status,
                "ready_at": self.ready_at,
                "due_at": self.due_at,
                "closed_at": self.closed_at,
                "next_check_at": self.next_check_at,
            },
        )


def _insert_returning_ids(session: Session, model: type[SQLModel], rows: list[dict]) -> list[int]:
    """Insert plain rows in one executemany; their new ids, in the order of `rows`.

    The ids are taken first and written with the rows, so the insert is the plain executemany a
    bare insert is: RETURNING ids in order costs more than the insert itself on PostgreSQL (rows
    go in batches of a statement each) and twice the insert on SQLite. On PostgreSQL the ids come
    from the table's own sequence in one query; on SQLite they follow the largest id, which no
    other writer can move while this transaction holds the write lock (BEGIN IMMEDIATE,
    models.database); were one to, the insert would fail on the primary key, not overwrite.
    """
    if not rows:
        return []
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        ids = sorted(
            session.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:table, 'id'))"
                    " FROM generate_series(1, :n)"
                ),
                {"table": table.name, "n": len(rows)},
            ).scalars()
        )
    elif dialect == "sqlite":
        last = session.execute(select(func.max(table.c.id))).scalar() or 0
        ids = list(range(last + 1, last + 1 + len(rows)))
    else:
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(session.execute(statement, rows).scalars())
    session.execute(insert(table), [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
    return ids


def _change_entry(
    step, spec: StepSpec, skipped: bool, referral_id: int, actor: str, now: datetime
) -> dict:
    """The audit entry (record's keyword arguments) of a step made ready or skipped."""
    if skipped:
        action, detail = AuditAction.skipped, {"step": step.key, "condition": spec.when}
    else:
        action = AuditAction.ready
        detail = {"step": step.key, "agency": step.agency, "due_at": step.due_at.isoformat()}
    return dict(
        actor=actor,
        action=action,
        now=now,
        referral_id=referral_id,
        step_id=step.id,
        detail=detail,
    )


def _completed_entry(referral_id: int, reference: str, actor: str, now: datetime) -> dict:
    return dict(
        actor=actor,
        action=AuditAction.referral_completed,
        now=now,
        referral_id=referral_id,
        detail={"reference": reference},
    )


def _enqueue_assigned(session: Session, step, referral_id: int, now: datetime) -> None:
    enqueue(
        session,
        event=MessageEvent.assigned,
        recipient=step.agency,
        referral_id=referral_id,
        step_id=step.id,
        due_at=step.due_at,
        now=now,
        key=dedup_key(step.id, "assigned", step.deadline_version, step.agency),
    )


def _enqueue_completed(session: Session, referral_id: int, recipient: str, now: datetime) -> None:
    enqueue(
        session,
        event=MessageEvent.referral_completed,
        recipient=recipient,
        referral_id=referral_id,
        step_id=None,
        due_at=None,
        now=now,
        key=dedup_key("referral", referral_id, "completed"),
    )


def _with_defaults(model: type[SQLModel], row: dict) -> dict:
    """A row for a plain insert: the model's own defaults, then the row's values."""
    return {**_defaults(model), **row}


@cache
def _defaults(model: type[SQLModel]) -> dict:
    return {
        name: field.get_default(call_default_factory=True)
        for name, field in model.model_fields.items()
        if name != "id" and not field.is_required()
    }


def _unused_references(session: Session, count: int) -> list[str]:
    """`count` reference codes no referral has (nor each other): one query a round."""
    chosen: list[str] = []
    for _ in range(20):
        wanted = count - len(chosen)
        if wanted == 0:
            return chosen
        candidates = {new_reference() for _ in range(wanted)} - set(chosen)
        with session.no_autoflush:  # the referrals of a batch get their codes before any flush
            taken = set(
                session.exec(
                    select(Referral.reference).where(col(Referral.reference).in_(candidates))
                ).all()
            )
        chosen.extend(sorted(candidates - taken))
    raise RuntimeError("could not find unused reference codes")


# --- moving a referral along --------------------------------------------------------------------


def steps_of(session: Session, referral_id: int) -> list[Step]:
    """Every step instance of a referral, in pathway order of creation."""
    return list(session.exec(select(Step).where(Step.referral_id == referral_id).order_by(Step.id)))


def key_done(steps: Iterable[Step], key: str) -> bool:
    """A step key is done when none of its instances is pending, open or awaiting a re-route."""
    instances = [s for s in steps if s.key == key]
    return bool(instances) and all(
        s.status in DONE or (s.status == StepStatus.declined and s.replaced_by is not None)
        for s in instances
    )


def advance(
    session: Session,
    *,
    referral: Referral,
    catalog: Catalog,
    now: datetime,
    actor: Actor = SYSTEM,
    steps: list[Step] | None = None,
) -> list[Step]:
    """Make ready every pending step whose dependencies are done; skip those whose condition fails.

    Idempotent: calling it again with nothing new changes nothing. Returns the steps it changed.
    `steps`, when the caller holds every step of the referral already, saves a query.
    """
    assert referral.id is not None
    if referral.status != ReferralStatus.active:
        return []
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    if steps is None:
        steps = steps_of(session, referral.id)
    changes = _ready_or_skip(
        steps, pathway, referral.options, referral.urgency, catalog=catalog, now=now
    )
    for step, spec, skipped in changes:
        session.add(step)
        entry = _change_entry(step, spec, skipped, referral.id, str(actor), now)
        record(session, **entry)
        if not skipped:
            _enqueue_assigned(session, step, referral.id, now)
    if all(key_done(steps, s.key) for s in pathway.steps):
        referral.status = ReferralStatus.completed
        referral.closed_at = now
        session.add(referral)
        record(session, **_completed_entry(referral.id, referral.reference, str(actor), now))
        _enqueue_completed(session, referral.id, referral.coordinator_agency, now)
    return [step for step, _, _ in changes]


def _ready_or_skip(
    steps: list,
    pathway: Pathway,
    options: dict,
    urgency: Urgency,
    *,
    catalog: Catalog,
    now: datetime,
    clocks: dict | None = None,
) -> list[tuple]:
    """The rules of `advance`, on the steps in memory (Step objects, or a launch's planned
    steps): every pending step whose dependencies are done becomes ready, or skipped if its
    condition fails. Returns (step, spec, skipped) in the order they changed."""
    changes: list[tuple] = []
    progress = True
    while progress:  # a skipped step can free the steps after it
        progress = False
        for step in steps:
            if step.status != StepStatus.pending:
                continue
            spec = pathway.step(step.key)
            if not all(key_done(steps, dep) for dep in spec.depends_on):
                continue
            skipped = bool(spec.when) and not CONDITIONS[spec.when](options)
            if skipped:
                _close(step, StepStatus.skipped, now)
            else:
                _set_ready(step, spec, urgency, catalog=catalog, now=now, clocks=clocks)
            changes.append((step, spec, skipped))
            progress = True
    return changes


def _move(step: Step, status: StepStatus) -> None:
    """Change a step's status if TRANSITIONS allows it (AlreadyDone / IllegalTransition if not)."""
    check_transition(step.status, status)
    step.status = status


def _set_ready(
    step, spec: StepSpec, urgency: Urgency, *, catalog: Catalog, now: datetime, clocks=None
) -> None:
    """Make a step ready in memory: its due time on the agency's clock, its next check.

    `clocks` (a launch's) keeps the times of a kind of step, which depend only on the spec, the
    agency, the offset, the urgency and the step's notice flags, for the rest of the batch."""
    _move(step, StepStatus.ready)
    step.ready_at = now
    kind = (
        id(spec),
        step.agency,
        step.offset,
        urgency,
        step.reminded,
        step.overdue,
        step.escalated,
    )
    if clocks is not None and kind in clocks:
        step.due_at, step.next_check_at = clocks[kind]
        return
    start = now
    agency_tz = catalog.agency(step.agency).timezone
    if step.offset:
        start = duration(step.offset).add_to(now, agency_tz)
    step.due_at = spec.clock(urgency).add_to(start, agency_tz)
    step.next_check_at = next_check(step, spec)
    if clocks is not None:
        clocks[kind] = (step.due_at, step.next_check_at)


def _make_ready(
    session: Session,
    *,
    step: Step,
    spec: StepSpec,
    referral: Referral,
    catalog: Catalog,
    now: datetime,
    actor: Actor,
) -> None:
    assert referral.id is not None
    _set_ready(step, spec, referral.urgency, catalog=catalog, now=now)
    session.add(step)
    if step.id is None:
        session.flush()
    record(session, **_change_entry(step, spec, False, referral.id, str(actor), now))
    _enqueue_assigned(session, step, referral.id, now)


def reminder_at(step: Step, spec: StepSpec) -> datetime | None:
    """When to remind the agency of a step, or None.

    Only in the second half of the step's time: a reminder that would fall right after the
    assignment (an emergency clock of 6 hours with a 6-hour reminder) repeats the first message.
    """
    if not spec.remind_before or step.due_at is None:
        return None
    moment = _before(spec.remind_before, step.due_at)
    start = step.ready_at or moment
    return moment if moment - start >= (step.due_at - start) / 2 else None


def escalation_at(step: Step, spec: StepSpec) -> datetime:
    """When an overdue step is escalated."""
    assert step.due_at is not None
    fixed = _fixed(spec.escalate_after)
    if fixed is None:
        return duration(spec.escalate_after).add_to(step.due_at)
    # Duration.add_to's arithmetic on the local clock of its default zone, without relativedelta
    return (step.due_at.astimezone(ZoneInfo(ESCALATION_ZONE)) + fixed).astimezone(UTC)


def next_check(step: Step, spec: StepSpec) -> datetime | None:
    """When the sweep must next look at this step: reminder, due time or escalation time."""
    if step.status not in OPEN or step.due_at is None:
        return None
    return earliest_check(step, reminder_at(step, spec), escalation_at(step, spec))


def earliest_check(
    step: Step, remind_at: datetime | None, escalate_at: datetime
) -> datetime | None:
    """`next_check` of an open step whose reminder and escalation times are known already (the
    sweep has them): the first of the notices it has not had yet."""
    moments = []
    if remind_at is not None and not step.reminded and not step.overdue:
        moments.append(remind_at)
    if not step.overdue:
        assert step.due_at is not None
        moments.append(step.due_at)
    if not step.escalated:
        moments.append(escalate_at)
    return min(moments) if moments else None


ESCALATION_ZONE = "Asia/Jakarta"  # the zone Duration.add_to counts in when given none


def _before(text: str, moment: datetime) -> datetime:
    """`duration(text).subtract_from(moment)`, without relativedelta for a fixed length."""
    fixed = _fixed(text)
    return duration(text).subtract_from(moment) if fixed is None else moment - fixed


@lru_cache(maxsize=256)
def _fixed(text: str) -> timedelta | None:
    """A calendar duration without months or years as the timedelta it always is, or None.

    A relativedelta of days, hours, minutes and seconds adds exactly like that timedelta, at a
    tenth of the cost: the sweep reckons two of them for every due step."""
    delta = duration(text).delta
    if delta is None or delta.years or delta.months or delta.leapdays or delta.weekday:
        return None
    if any(getattr(delta, f) is not None for f in ("year", "month", "day", "hour", "minute")):
        return None  # absolute fields: never from parse_duration, but then not a length
    return timedelta(
        days=delta.days,
        hours=delta.hours,
        minutes=delta.minutes,
        seconds=delta.seconds,
        microseconds=delta.microseconds,
    )


@lru_cache(maxsize=256)
def duration(text: str) -> Duration:
    """`parse_duration`, kept: a pathway has a handful of clocks, read for every step (a Duration
    is frozen, so one can be shared)."""
    return parse_duration(text)


# --- finding a step -----------------------------------------------------------------------------


def find_referral(session: Session, reference: str) -> Referral:
    """The referral with this reference code, or NotFound."""
    referral = session.exec(select(Referral).where(Referral.reference == reference.upper())).first()
    if referral is None:
        raise NotFound(
            f"no referral {quoted(reference)}: check the reference code (like RJK-7QK2-M9)"
        )
    return referral


def load_step(
    *, session: Session, reference: str, step_ref: str, agency: str | None = None
) -> Step:
    """The step `key` or `key#n` of a referral (the CLI's way in); an agency finds only its own.

    Of several instances of a key, the one that still needs work comes first (open ones by due
    time, then pending or awaiting a re-route), else the newest.
    """
    referral = find_referral(session, reference)
    assert referral.id is not None
    steps = steps_of(session, referral.id)
    if agency is not None:
        steps = [s for s in steps if s.agency == agency]
        if not steps:  # the same answer as for a code that does not exist
            raise NotFound(f"no referral '{referral.reference}' for this agency")
    key, _, number = step_ref.partition("#")
    instances = [s for s in steps if s.key == key and (not number or str(s.instance) == number)]
    if not instances:
        # Only the caller's own steps are named: an agency learns nothing of the others.
        keys = list(dict.fromkeys(s.key for s in steps))
        whose = "this agency has" if agency else "it has"
        raise NotFound(
            f"referral {referral.reference} has no step {quoted(step_ref, keys)} for you "
            f"({whose} steps: {', '.join(keys)})"
        )
    return min(instances, key=_urgency)


def _urgency(step: Step) -> tuple:
    if step.is_open:
        return (0, step.due_at or step.ready_at, step.instance)
    if step.status == StepStatus.pending or step.awaits_reroute:
        return (1, None, step.instance)
    return (2, None, -step.instance)


def record_refusal(
    session: Session,
    *,
    actor: str,
    attempt: str,
    error: Exception | str,
    now: datetime,
    via: str,
    reference: str | None = None,
    step_id: int | None = None,
    step_ref: str | None = None,
    count: int = 1,
) -> None:
    """Record a refused attempt in the audit trail, in the caller's (own) transaction.

    The entry names the attempt, the error's class and the referral and step if they exist:
    never the typed values, which may be anything. `count` > 1 stands for that many repeats
    of one attempt from one source in one window (a flood leaves one entry, not thousands).
    """
    error_name = error if isinstance(error, str) else type(error).__name__
    referral = None
    if reference:
        referral = session.exec(
            select(Referral).where(Referral.reference == reference.upper()[:16])
        ).first()
    if step_id is not None and session.get(Step, step_id) is None:
        step_id = None
    if step_id is None and step_ref and referral is not None:
        try:
            step_id = load_step(session=session, reference=referral.reference, step_ref=step_ref).id
        except NotFound:
            pass
    record(
        session,
        actor=actor[:80],
        action=AuditAction.refused,
        now=now,
        referral_id=referral.id if referral else None,
        step_id=step_id,
        detail={"attempt": attempt, "error": error_name, "via": via}
        | ({"count": count} if count > 1 else {}),
    )


def _referral_of(session: Session, step: Step) -> Referral:
    referral = session.get(Referral, step.referral_id)
    assert referral is not None and referral.id is not None
    return referral


def _claim(session: Session, step: Step) -> None:
    """Write the step only if nobody changed it since we read it (the version column checks)."""
    session.add(step)
    try:
        session.flush()
    except StaleDataError:
        raise AlreadyDone(
            "someone else changed this step at the same moment; reload and try again"
        ) from None


def _close(step: Step, status: StepStatus, now: datetime) -> None:
    """End a step's work: its new status, when it closed, and no more deadline checks."""
    _move(step, status)
    step.closed_at = now
    step.next_check_at = None


def _require_open(step: Step, what: str) -> None:
    if not step.is_open:
        raise IllegalTransition(f"a {step.status.value} step {what}: only a ready or accepted one")


# --- agency actions -----------------------------------------------------------------------------


def accept_step(*, session: Session, step: Step, actor: Actor, now: datetime) -> Step:
    """The agency takes the step on."""
    _move(step, StepStatus.accepted)
    step.accepted_at = now
    _claim(session, step)
    record(
        session,
        actor=str(actor),
        action=AuditAction.accepted,
        now=now,
        referral_id=step.referral_id,
        step_id=step.id,
        detail={"step": step.key},
    )
    return step


def decline_step(*, session: Session, step: Step, reason: str, actor: Actor, now: datetime) -> Step:
    """The agency declines with a reason code; the coordinator must re-route the step."""
    code = _code(DeclineCode, reason, "decline reason")
    referral = _referral_of(session, step)
    _close(step, StepStatus.declined, now)
    step.decline_reason = code
    _claim(session, step)
    record(
        session,
        actor=str(actor),
        action=AuditAction.declined,
        now=now,
        referral_id=referral.id,
        step_id=step.id,
        detail={"step": step.key, "reason": code},
    )
    enqueue(
        session,
        event=MessageEvent.declined,
        recipient=referral.coordinator_agency,
        referral_id=referral.id,
        step_id=step.id,
        due_at=step.due_at,
        now=now,
        key=dedup_key(step.id, "declined", referral.coordinator_agency),
    )
    return step


def complete_step(
    *, session: Session, step: Step, outcome: str, actor: Actor, now: datetime, catalog: Catalog
) -> Step:
    """The agency records the outcome; the steps that waited for this one become ready."""
    code = _code(OutcomeCode, outcome, "outcome")
    referral = _referral_of(session, step)
    _close(step, StepStatus.completed, now)
    step.outcome = code
    _claim(session, step)
    record(
        session,
        actor=str(actor),
        action=AuditAction.completed,
        now=now,
        referral_id=referral.id,
        step_id=step.id,
        detail={"step": step.key, "outcome": code},
    )
    advance(session, referral=referral, catalog=catalog, now=now, actor=actor)
    return step


def request_extension(
    *, session: Session, step: Step, until: datetime, reason: str, actor: Actor, now: datetime
) -> Step:
    """The agency asks for more time; the coordinator decides."""
    code = _code(ExtensionCode, reason, "extension reason")
    _require_aware(until, "the new deadline")
    _require_open(step, "cannot be extended")
    _check_until(step, until, now)
    if step.extension_until == until:
        raise AlreadyDone("this extension was already requested; the coordinator will decide")
    referral = _referral_of(session, step)
    step.extension_until, step.extension_reason = until, code
    _claim(session, step)
    record(
        session,
        actor=str(actor),
        action=AuditAction.extension_requested,
        now=now,
        referral_id=referral.id,
        step_id=step.id,
        detail={"step": step.key, "until": until.isoformat(), "reason": code},
    )
    enqueue(
        session,
        event=MessageEvent.extension_requested,
        recipient=referral.coordinator_agency,
        referral_id=referral.id,
        step_id=step.id,
        due_at=until,
        now=now,
        key=dedup_key(step.id, "extension-requested", step.deadline_version, until.isoformat()),
    )
    return step


def _check_until(step: Step, until: datetime, now: datetime) -> None:
    if until <= now:
        raise BadInput("the new deadline is in the past: give a later date")
    if step.due_at and until <= step.due_at:
        raise BadInput("the new deadline is not later than the current one")
    if until > now + MAX_EXTENSION:
        raise BadInput("the new deadline is more than a year away: give a nearer date")


# --- coordinator actions ------------------------------------------------------------------------


def decide_extension(
    *,
    session: Session,
    step: Step,
    approve: bool,
    actor: Actor,
    now: datetime,
    until: datetime | None = None,
) -> Step:
    """Approve (optionally with another date) or refuse an extension; approving re-arms notices."""
    _require_open(step, "has no deadline to extend")
    if until is None:
        until = step.extension_until
    if until is None:
        raise BadInput("no extension was requested: give the new deadline")
    _require_aware(until, "the new deadline")
    referral = _referral_of(session, step)
    if approve:
        _check_until(step, until, now)
        pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
        step.due_at = until
        step.deadline_version += 1
        step.reminded = step.overdue = step.escalated = False
        step.next_check_at = next_check(step, pathway.step(step.key))
    requested = step.extension_until
    step.extension_until = step.extension_reason = None
    _claim(session, step)
    action = AuditAction.extension_approved if approve else AuditAction.extension_refused
    record(
        session,
        actor=str(actor),
        action=action,
        now=now,
        referral_id=referral.id,
        step_id=step.id,
        detail={"step": step.key, "until": until.isoformat()},
    )
    event = MessageEvent.extension_approved if approve else MessageEvent.extension_refused
    enqueue(
        session,
        event=event,
        recipient=step.agency,
        referral_id=referral.id,
        step_id=step.id,
        due_at=step.due_at,
        now=now,
        key=dedup_key(step.id, action, step.deadline_version, (requested or until).isoformat()),
    )
    return step


def reroute_step(
    *, session: Session, step: Step, to_agency: str, actor: Actor, now: datetime, catalog: Catalog
) -> Step:
    """Hand a declined (or still open) step to another agency, with a fresh deadline."""
    catalog.agency(to_agency)
    if not (step.awaits_reroute or step.is_open):
        raise IllegalTransition(
            f"a {step.status.value} step cannot be re-routed: only declined or open steps can"
        )
    if step.agency == to_agency and step.is_open:
        raise AlreadyDone(f"the step is already with {to_agency}; nothing changed")
    referral = _referral_of(session, step)
    _require_consent(session, referral, to_agency)
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    number = session.exec(
        select(func.max(Step.instance)).where(Step.referral_id == referral.id, Step.key == step.key)
    ).one()
    new = Step(
        referral_id=step.referral_id,
        key=step.key,
        instance=number + 1,
        agency=to_agency,
        offset=step.offset,
    )
    session.add(new)
    session.flush()
    if step.is_open:
        _close(step, StepStatus.cancelled, now)
    else:
        step.replaced_by = new.id
    _claim(session, step)
    record(
        session,
        actor=str(actor),
        action=AuditAction.rerouted,
        now=now,
        referral_id=referral.id,
        step_id=step.id,
        detail={"step": step.key, "from": step.agency, "to": to_agency, "new_step_id": new.id},
    )
    _make_ready(
        session,
        step=new,
        spec=pathway.step(step.key),
        referral=referral,
        catalog=catalog,
        now=now,
        actor=actor,
    )
    return new


def _require_consent(session: Session, referral: Referral, agency: str) -> None:
    consents = session.exec(select(Consent).where(Consent.referral_id == referral.id)).all()
    if not any(c.override or c.agency == agency for c in consents):
        raise BadInput(
            f"no consent is recorded to share with '{agency}': record it first "
            f"(`rujukan consent add {referral.reference} --agency {agency} --by NAME`)"
        )


def add_consent(
    *,
    session: Session,
    referral: Referral,
    agency: str,
    actor: Actor,
    now: datetime,
    catalog: Catalog,
) -> Consent:
    """Record the victim's consent to share with one more agency."""
    catalog.agency(agency)
    assert referral.id is not None
    existing = session.exec(
        select(Consent).where(Consent.referral_id == referral.id, Consent.agency == agency)
    ).first()
    if existing:
        raise AlreadyDone(f"consent for '{agency}' is already recorded; nothing changed")
    consent = Consent(
        referral_id=referral.id, agency=agency, recorded_by=actor.name, recorded_at=now
    )
    session.add(consent)
    record(
        session,
        actor=str(actor),
        action=AuditAction.consent_recorded,
        now=now,
        referral_id=referral.id,
        detail={"agency": agency},
    )
    return consent


def cancel_step(
    *, session: Session, step: Step, reason: str, actor: Actor, now: datetime, catalog: Catalog
) -> Step:
    """The coordinator cancels a step that is no longer needed; steps after it may proceed."""
    code = _code(CancelCode, reason, "cancel reason")
    referral = _referral_of(session, step)
    _close(step, StepStatus.cancelled, now)
    _claim(session, step)
    record(
        session,
        actor=str(actor),
        action=AuditAction.step_cancelled,
        now=now,
        referral_id=referral.id,
        step_id=step.id,
        detail={"step": step.key, "reason": code},
    )
    advance(session, referral=referral, catalog=catalog, now=now, actor=actor)
    return step


def cancel_referral(
    *, session: Session, referral: Referral, reason: str, actor: Actor, now: datetime
) -> Referral:
    """The coordinator closes a referral: every step not yet finished is cancelled."""
    code = _code(CancelCode, reason, "cancel reason")
    if referral.status == ReferralStatus.cancelled:
        raise AlreadyDone("the referral is already cancelled; nothing changed")
    if referral.status != ReferralStatus.active:
        raise IllegalTransition(f"a {referral.status.value} referral cannot be cancelled")
    assert referral.id is not None
    unfinished = sources(StepStatus.cancelled)
    for step in steps_of(session, referral.id):
        if step.status in unfinished and (
            step.status != StepStatus.declined or step.awaits_reroute
        ):
            _close(step, StepStatus.cancelled, now)
            _claim(session, step)
    referral.status, referral.closed_at = ReferralStatus.cancelled, now
    session.add(referral)
    record(
        session,
        actor=str(actor),
        action=AuditAction.referral_cancelled,
        now=now,
        referral_id=referral.id,
        detail={"reason": code},
    )
    return referral


def _code(enum: type, value: str | None, what: str) -> str:
    if not value:
        raise BadInput(f"a {what} is required (one of: {', '.join(e.value for e in enum)})")
    try:
        return enum(value).value
    except ValueError:
        raise BadInput(
            f"unknown {what} {quoted(value, {e.value for e in enum})} "
            f"(one of: {', '.join(e.value for e in enum)})"
        ) from None
