"""The engine's transactions: launch, accept, decline, complete, extend, re-route, cancel.

Each function runs inside the caller's session (one transaction), checks its input before it
writes anything, and writes the step change, its audit entries and its outbox messages together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import func, insert
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, SQLModel, col, select

from models.audit import record
from models.catalog import Catalog, register_pathways, stored_pathway
from models.condition import CONDITIONS
from models.deadline import parse_duration
from models.errors import AlreadyDone, BadInput, IllegalTransition, NotFound, quoted
from models.intake import Intake
from models.outbox import MessageEvent, dedup_key, enqueue, queued_together
from models.pathway import Pathway, StepSpec
from models.referral import Consent, Person, Referral, ReferralStatus, new_reference
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

    Every intake is checked before anything is written. Then the writes go kind by kind, each
    kind in one statement for the whole batch: the referrals, then their people, consents and
    steps; each referral's first steps are made ready as `advance` always does, and their
    messages are queued together at the end.
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
    register_pathways(session, catalog, now)

    referrals = [
        Referral(
            reference=reference,
            pathway_id=pathway.id,
            pathway_version=pathway.version,
            urgency=intake.urgency,
            coordinator=intake.coordinator,
            coordinator_agency=coordinator_agency,
            options=intake.case.model_dump(),
            **intake.facts.columns(),
            created_at=now,
            batch=batch,
        )
        for (intake, pathway, coordinator_agency), reference in zip(
            plans, _unused_references(session, len(plans)), strict=True
        )
    ]
    session.add_all(referrals)
    session.flush()

    # People, consents and steps need no objects of their own until they are read: each kind is
    # one insert of plain rows; the steps are then read back, in order, for `advance`.
    people, consents, steps = [], [], []
    for referral, (intake, pathway, _) in zip(referrals, plans, strict=True):
        people.append(
            {"referral_id": referral.id, "sealed": sealer.seal(intake.person.model_dump())}
        )
        if intake.consent.override:
            consents.append(
                {
                    "referral_id": referral.id,
                    "override": True,
                    "recorded_by": intake.consent.override.by,
                    "reason_sealed": sealer.seal({"reason": intake.consent.override.reason}),
                    "recorded_at": now,
                }
            )
        consents.extend(
            {
                "referral_id": referral.id,
                "agency": slug,
                "recorded_by": intake.coordinator,
                "recorded_at": now,
            }
            for slug in sorted(set(intake.consent.agencies))
        )
        steps.extend(
            {
                "referral_id": referral.id,
                "key": spec.key,
                "instance": instance,
                "agency": spec.agency,
                "offset": offset,
            }
            for spec in pathway.steps
            for instance, offset in enumerate(spec.repeat or [None], start=1)
        )
    for model, rows in ((Person, people), (Consent, consents), (Step, steps)):
        if rows:
            session.execute(insert(model.__table__), [_with_defaults(model, r) for r in rows])  # type: ignore[attr-defined]
    steps_of_referral: dict[int, list[Step]] = {r.id: [] for r in referrals if r.id is not None}
    for step in session.exec(
        select(Step).where(col(Step.referral_id).in_(steps_of_referral)).order_by(Step.id)
    ):
        steps_of_referral[step.referral_id].append(step)

    with queued_together(session):
        for referral, (intake, pathway, _) in zip(referrals, plans, strict=True):
            assert referral.id is not None
            actor = Actor("coordinator", intake.coordinator)
            record(
                session,
                actor=str(actor),
                action=AuditAction.launched,
                now=now,
                referral_id=referral.id,
                detail={
                    "reference": referral.reference,
                    "pathway": pathway.id,
                    "version": pathway.version,
                    "urgency": intake.urgency.value,
                    "consent_override": bool(intake.consent.override),
                },
            )
            advance(
                session,
                referral=referral,
                catalog=catalog,
                now=now,
                actor=actor,
                steps=steps_of_referral[referral.id],
            )
    return referrals


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
    `steps`, when the caller holds every step of the referral already (a launch), saves a query.
    """
    assert referral.id is not None
    if referral.status != ReferralStatus.active:
        return []
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    if steps is None:
        steps = steps_of(session, referral.id)
    changed: list[Step] = []
    progress = True
    while progress:  # a skipped step can free the steps after it
        progress = False
        for step in steps:
            if step.status != StepStatus.pending:
                continue
            spec = pathway.step(step.key)
            if not all(key_done(steps, dep) for dep in spec.depends_on):
                continue
            if spec.when and not CONDITIONS[spec.when](referral.options):
                _close(step, StepStatus.skipped, now)
                record(
                    session,
                    actor=str(actor),
                    action=AuditAction.skipped,
                    now=now,
                    referral_id=referral.id,
                    step_id=step.id,
                    detail={"step": step.key, "condition": spec.when},
                )
            else:
                _make_ready(
                    session,
                    step=step,
                    spec=spec,
                    referral=referral,
                    catalog=catalog,
                    now=now,
                    actor=actor,
                )
            changed.append(step)
            progress = True
    session.add_all(changed)
    if all(key_done(steps, s.key) for s in pathway.steps):
        referral.status = ReferralStatus.completed
        referral.closed_at = now
        session.add(referral)
        record(
            session,
            actor=str(actor),
            action=AuditAction.referral_completed,
            now=now,
            referral_id=referral.id,
            detail={"reference": referral.reference},
        )
        enqueue(
            session,
            event=MessageEvent.referral_completed,
            recipient=referral.coordinator_agency,
            referral_id=referral.id,
            step_id=None,
            due_at=None,
            now=now,
            key=dedup_key("referral", referral.id, "completed"),
        )
    return changed


def _move(step: Step, status: StepStatus) -> None:
    """Change a step's status if TRANSITIONS allows it (AlreadyDone / IllegalTransition if not)."""
    check_transition(step.status, status)
    step.status = status


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
    _move(step, StepStatus.ready)
    step.ready_at = now
    start = now
    agency_tz = catalog.agency(step.agency).timezone
    if step.offset:
        start = parse_duration(step.offset).add_to(now, agency_tz)
    step.due_at = spec.clock(referral.urgency).add_to(start, agency_tz)
    step.next_check_at = next_check(step, spec)
    session.add(step)
    if step.id is None:
        session.flush()
    record(
        session,
        actor=str(actor),
        action=AuditAction.ready,
        now=now,
        referral_id=referral.id,
        step_id=step.id,
        detail={"step": step.key, "agency": step.agency, "due_at": step.due_at.isoformat()},
    )
    enqueue(
        session,
        event=MessageEvent.assigned,
        recipient=step.agency,
        referral_id=referral.id,
        step_id=step.id,
        due_at=step.due_at,
        now=now,
        key=dedup_key(step.id, "assigned", step.deadline_version, step.agency),
    )


def reminder_at(step: Step, spec: StepSpec) -> datetime | None:
    """When to remind the agency of a step, or None.

    Only in the second half of the step's time: a reminder that would fall right after the
    assignment (an emergency clock of 6 hours with a 6-hour reminder) repeats the first message.
    """
    if not spec.remind_before or step.due_at is None:
        return None
    moment = parse_duration(spec.remind_before).subtract_from(step.due_at)
    start = step.ready_at or moment
    return moment if moment - start >= (step.due_at - start) / 2 else None


def next_check(step: Step, spec: StepSpec) -> datetime | None:
    """When the sweep must next look at this step: reminder, due time or escalation time."""
    if step.status not in OPEN or step.due_at is None:
        return None
    moments = []
    remind_at = reminder_at(step, spec)
    if remind_at is not None and not step.reminded and not step.overdue:
        moments.append(remind_at)
    if not step.overdue:
        moments.append(step.due_at)
    if not step.escalated:
        moments.append(parse_duration(spec.escalate_after).add_to(step.due_at))
    return min(moments) if moments else None


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
