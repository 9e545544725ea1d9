"""The engine's transactions: launch, accept, decline, complete, extend, re-route, cancel.

Each function runs inside the caller's session (one transaction), checks its input before it
writes anything, and writes the step change, its audit entries and its outbox messages together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, select

from models.audit import record
from models.catalog import Catalog, register_pathways, stored_pathway
from models.condition import CONDITIONS
from models.deadline import parse_duration
from models.errors import AlreadyDone, BadInput, Forbidden, IllegalTransition, NotFound, quoted
from models.intake import Intake
from models.outbox import MessageEvent, dedup_key, enqueue
from models.pathway import Pathway, StepSpec
from models.referral import Consent, Person, Referral, ReferralStatus, new_reference
from models.seal import Sealer
from models.step import (
    DONE,
    OPEN,
    CancelCode,
    DeclineCode,
    ExtensionCode,
    OutcomeCode,
    Step,
    StepStatus,
    check_transition,
)

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
    _require_aware(now, "now")
    pathway = catalog.pathway(intake.pathway)
    check_consent(intake, pathway, catalog)
    coordinator_agency = intake.coordinator_agency or catalog.coordinator_agency
    catalog.agency(coordinator_agency)
    register_pathways(session, catalog, now)

    referral = Referral(
        reference=_unused_reference(session),
        pathway_id=pathway.id,
        pathway_version=pathway.version,
        urgency=intake.urgency,
        coordinator=intake.coordinator,
        coordinator_agency=coordinator_agency,
        options=intake.case.model_dump(),
        created_at=now,
        batch=batch,
    )
    session.add(referral)
    session.flush()
    assert referral.id is not None
    session.add(Person(referral_id=referral.id, sealed=sealer.seal(intake.person.model_dump())))
    if intake.consent.override:
        session.add(
            Consent(
                referral_id=referral.id,
                override=True,
                recorded_by=intake.consent.override.by,
                reason_sealed=sealer.seal({"reason": intake.consent.override.reason}),
                recorded_at=now,
            )
        )
    for slug in sorted(set(intake.consent.agencies)):
        session.add(
            Consent(
                referral_id=referral.id,
                agency=slug,
                recorded_by=intake.coordinator,
                recorded_at=now,
            )
        )
    for spec in pathway.steps:
        for instance, offset in enumerate(spec.repeat or [None], start=1):
            session.add(
                Step(
                    referral_id=referral.id,
                    key=spec.key,
                    instance=instance,
                    agency=spec.agency,
                    offset=offset,
                )
            )
    session.flush()
    actor = Actor("coordinator", intake.coordinator)
    record(
        session,
        actor=str(actor),
        action="launched",
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
    advance(session, referral=referral, catalog=catalog, now=now, actor=actor)
    return referral


def _unused_reference(session: Session) -> str:
    for _ in range(20):
        reference = new_reference()
        if session.exec(select(Referral.id).where(Referral.reference == reference)).first() is None:
            return reference
    raise RuntimeError("could not find an unused reference code")


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
    session: Session, *, referral: Referral, catalog: Catalog, now: datetime, actor: Actor = SYSTEM
) -> list[Step]:
    """Make ready every pending step whose dependencies are done; skip those whose condition fails.

    Idempotent: calling it again with nothing new changes nothing. Returns the steps it changed.
    """
    assert referral.id is not None
    if referral.status != ReferralStatus.active:
        return []
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
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
                _set_status(step, StepStatus.skipped, now)
                step.closed_at = now
                record(
                    session,
                    actor=str(actor),
                    action="skipped",
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
            action="referral-completed",
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
    session.flush()
    return changed


def _set_status(step: Step, status: StepStatus, now: datetime) -> None:
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
    _set_status(step, StepStatus.ready, now)
    step.ready_at = now
    start = now
    agency_tz = catalog.agency(step.agency).timezone
    if step.offset:
        start = parse_duration(step.offset).add_to(now, agency_tz)
    step.due_at = spec.clock(referral.urgency).add_to(start, agency_tz)
    step.next_check_at = next_check(step, spec)
    session.add(step)
    session.flush()
    record(
        session,
        actor=str(actor),
        action="ready",
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


def next_check(step: Step, spec: StepSpec) -> datetime | None:
    """When the sweep must next look at this step: reminder, due time or escalation time."""
    if step.status not in OPEN or step.due_at is None:
        return None
    moments = []
    if spec.remind_before and not step.reminded and not step.overdue:
        moments.append(parse_duration(spec.remind_before).subtract_from(step.due_at))
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


def find_step(
    session: Session,
    referral: Referral,
    step_ref: str,
    agency: str | None = None,
    statuses: Iterable[StepStatus] | None = None,
) -> Step:
    """The step `key` or `key#n` of a referral; for an agency, only its own steps count."""
    key, _, number = step_ref.partition("#")
    assert referral.id is not None
    steps = [s for s in steps_of(session, referral.id) if s.key == key]
    if number:
        steps = [s for s in steps if str(s.instance) == number]
    if not steps:
        pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
        known = ", ".join(s.key for s in pathway.steps)
        raise NotFound(
            f"referral {referral.reference} has no step {quoted(step_ref)} (steps: {known})"
        )
    if agency is not None:
        if not any(s.agency == agency for s in steps_of(session, referral.id)):
            raise NotFound(f"no referral '{referral.reference}' for agency '{agency}'")
        own = [s for s in steps if s.agency == agency]
        if not own:
            raise Forbidden(f"step '{step_ref}' of {referral.reference} belongs to another agency")
        steps = own
    if statuses is not None:
        wanted = [s for s in steps if s.status in set(statuses)]
        if wanted:
            return min(
                wanted, key=lambda s: (s.due_at or s.ready_at or referral.created_at, s.instance)
            )
    # the newest instance tells the truth about where the step stands
    return max(steps, key=lambda s: s.instance)


def record_refusal(
    session: Session,
    *,
    actor: str,
    attempt: str,
    error: Exception,
    now: datetime,
    via: str,
    reference: str | None = None,
    step_id: int | None = None,
    step_ref: str | None = None,
) -> None:
    """Record a refused attempt in the audit trail, in the caller's (own) transaction.

    The entry names the attempt, the error's class and the referral and step if they exist:
    never the typed values, which may be anything.
    """
    referral = None
    if reference:
        referral = session.exec(
            select(Referral).where(Referral.reference == reference.upper()[:16])
        ).first()
    if step_id is not None and session.get(Step, step_id) is None:
        step_id = None
    if step_id is None and step_ref and referral is not None:
        try:
            step_id = find_step(session, referral, step_ref).id
        except NotFound:
            pass
    record(
        session,
        actor=actor[:80],
        action="refused",
        now=now,
        referral_id=referral.id if referral else None,
        step_id=step_id,
        detail={"attempt": attempt, "error": type(error).__name__, "via": via},
    )


def _load(
    session: Session,
    reference: str,
    step_ref: str,
    agency: str | None,
    statuses: Iterable[StepStatus] | None,
) -> tuple[Referral, Step, Pathway]:
    referral = find_referral(session, reference)
    step = find_step(session, referral, step_ref, agency, statuses)
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    return referral, step, pathway


def _claim(session: Session, step: Step) -> None:
    """Write the step only if nobody changed it since we read it (the version column checks)."""
    session.add(step)
    try:
        session.flush()
    except StaleDataError:
        raise AlreadyDone(
            "someone else changed this step at the same moment; reload and try again"
        ) from None


# --- agency actions -----------------------------------------------------------------------------


def accept_step(
    session: Session, *, reference: str, step: str, agency: str, actor: Actor, now: datetime
) -> Step:
    """The agency takes the step on."""
    referral, row, _ = _load(session, reference, step, agency, [StepStatus.ready])
    _set_status(row, StepStatus.accepted, now)
    row.accepted_at = now
    _claim(session, row)
    record(
        session,
        actor=str(actor),
        action="accepted",
        now=now,
        referral_id=referral.id,
        step_id=row.id,
        detail={"step": row.key},
    )
    return row


def decline_step(
    session: Session,
    *,
    reference: str,
    step: str,
    agency: str,
    reason: str,
    actor: Actor,
    now: datetime,
    catalog: Catalog,
) -> Step:
    """The agency declines with a reason code; the coordinator must re-route the step."""
    code = _code(DeclineCode, reason, "decline reason")
    referral, row, _ = _load(session, reference, step, agency, OPEN)
    _set_status(row, StepStatus.declined, now)
    row.decline_reason = code
    row.closed_at = now
    row.next_check_at = None
    _claim(session, row)
    record(
        session,
        actor=str(actor),
        action="declined",
        now=now,
        referral_id=referral.id,
        step_id=row.id,
        detail={"step": row.key, "reason": code},
    )
    enqueue(
        session,
        event=MessageEvent.declined,
        recipient=referral.coordinator_agency,
        referral_id=referral.id,
        step_id=row.id,
        due_at=row.due_at,
        now=now,
        key=dedup_key(row.id, "declined", referral.coordinator_agency),
    )
    return row


def complete_step(
    session: Session,
    *,
    reference: str,
    step: str,
    agency: str,
    outcome: str,
    actor: Actor,
    now: datetime,
    catalog: Catalog,
) -> Step:
    """The agency records the outcome; the steps that waited for this one become ready."""
    code = _code(OutcomeCode, outcome, "outcome")
    referral, row, _ = _load(session, reference, step, agency, [StepStatus.accepted])
    _set_status(row, StepStatus.completed, now)
    row.outcome = code
    row.closed_at = now
    row.next_check_at = None
    _claim(session, row)
    record(
        session,
        actor=str(actor),
        action="completed",
        now=now,
        referral_id=referral.id,
        step_id=row.id,
        detail={"step": row.key, "outcome": code},
    )
    advance(session, referral=referral, catalog=catalog, now=now, actor=actor)
    return row


def request_extension(
    session: Session,
    *,
    reference: str,
    step: str,
    agency: str,
    until: datetime,
    reason: str,
    actor: Actor,
    now: datetime,
) -> Step:
    """The agency asks for more time; the coordinator decides."""
    code = _code(ExtensionCode, reason, "extension reason")
    _require_aware(until, "--until")
    referral, row, _ = _load(session, reference, step, agency, OPEN)
    if not row.is_open:
        raise IllegalTransition(f"a {row.status.value} step cannot be extended")
    _check_until(row, until, now)
    if row.extension_until == until:
        raise AlreadyDone("this extension was already requested; the coordinator will decide")
    row.extension_until, row.extension_reason = until, code
    _claim(session, row)
    record(
        session,
        actor=str(actor),
        action="extension-requested",
        now=now,
        referral_id=referral.id,
        step_id=row.id,
        detail={"step": row.key, "until": until.isoformat(), "reason": code},
    )
    enqueue(
        session,
        event=MessageEvent.extension_requested,
        recipient=referral.coordinator_agency,
        referral_id=referral.id,
        step_id=row.id,
        due_at=until,
        now=now,
        key=dedup_key(row.id, "extension-requested", row.deadline_version, until.isoformat()),
    )
    return row


def _check_until(row: Step, until: datetime, now: datetime) -> None:
    if until <= now:
        raise BadInput("the new deadline is in the past: give a later date")
    if row.due_at and until <= row.due_at:
        raise BadInput("the new deadline is not later than the current one")
    if until > now + MAX_EXTENSION:
        raise BadInput("the new deadline is more than a year away: give a nearer date")


# --- coordinator actions ------------------------------------------------------------------------


def decide_extension(
    session: Session,
    *,
    reference: str,
    step: str,
    approve: bool,
    actor: Actor,
    now: datetime,
    until: datetime | None = None,
) -> Step:
    """Approve (optionally with another date) or refuse an extension; approving re-arms notices."""
    referral, row, pathway = _load(session, reference, step, None, OPEN)
    if not row.is_open:
        raise IllegalTransition(f"a {row.status.value} step has no deadline to extend")
    if until is None:
        until = row.extension_until
    if until is None:
        raise BadInput("no extension was requested: give the new deadline with --until")
    _require_aware(until, "--until")
    if approve:
        _check_until(row, until, now)
        row.due_at = until
        row.deadline_version += 1
        row.reminded = row.overdue = row.escalated = False
        row.next_check_at = next_check(row, pathway.step(row.key))
    requested = row.extension_until
    row.extension_until = row.extension_reason = None
    _claim(session, row)
    action = "extension-approved" if approve else "extension-refused"
    record(
        session,
        actor=str(actor),
        action=action,
        now=now,
        referral_id=referral.id,
        step_id=row.id,
        detail={"step": row.key, "until": until.isoformat()},
    )
    event = MessageEvent.extension_approved if approve else MessageEvent.extension_refused
    enqueue(
        session,
        event=event,
        recipient=row.agency,
        referral_id=referral.id,
        step_id=row.id,
        due_at=row.due_at,
        now=now,
        key=dedup_key(row.id, action, row.deadline_version, (requested or until).isoformat()),
    )
    return row


def reroute_step(
    session: Session,
    *,
    reference: str,
    step: str,
    to_agency: str,
    actor: Actor,
    now: datetime,
    catalog: Catalog,
) -> Step:
    """Hand a declined (or still open) step to another agency, with a fresh deadline."""
    catalog.agency(to_agency)
    referral, row, pathway = _load(
        session, reference, step, None, [StepStatus.declined, StepStatus.ready, StepStatus.accepted]
    )
    if not (row.awaits_reroute or row.is_open):
        raise IllegalTransition(
            f"a {row.status.value} step cannot be re-routed: only declined or open steps can"
        )
    if row.agency == to_agency and row.is_open:
        raise AlreadyDone(f"the step is already with {to_agency}; nothing changed")
    _require_consent(session, referral, to_agency)
    assert referral.id is not None
    number = session.exec(
        select(func.max(Step.instance)).where(Step.referral_id == referral.id, Step.key == row.key)
    ).one()
    new = Step(
        referral_id=referral.id,
        key=row.key,
        instance=number + 1,
        agency=to_agency,
        offset=row.offset,
    )
    session.add(new)
    session.flush()
    if row.is_open:
        _set_status(row, StepStatus.cancelled, now)
        row.closed_at = now
        row.next_check_at = None
    else:
        row.replaced_by = new.id
    _claim(session, row)
    record(
        session,
        actor=str(actor),
        action="rerouted",
        now=now,
        referral_id=referral.id,
        step_id=row.id,
        detail={"step": row.key, "from": row.agency, "to": to_agency, "new_step_id": new.id},
    )
    _make_ready(
        session,
        step=new,
        spec=pathway.step(row.key),
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
    session: Session, *, reference: str, agency: str, actor: Actor, now: datetime, catalog: Catalog
) -> Consent:
    """Record the victim's consent to share with one more agency."""
    catalog.agency(agency)
    referral = find_referral(session, reference)
    existing = session.exec(
        select(Consent).where(Consent.referral_id == referral.id, Consent.agency == agency)
    ).first()
    if existing:
        raise AlreadyDone(f"consent for '{agency}' is already recorded; nothing changed")
    assert referral.id is not None
    consent = Consent(
        referral_id=referral.id, agency=agency, recorded_by=actor.name, recorded_at=now
    )
    session.add(consent)
    record(
        session,
        actor=str(actor),
        action="consent-recorded",
        now=now,
        referral_id=referral.id,
        detail={"agency": agency},
    )
    return consent


def cancel_step(
    session: Session,
    *,
    reference: str,
    step: str,
    reason: str,
    actor: Actor,
    now: datetime,
    catalog: Catalog,
) -> Step:
    """The coordinator cancels a step that is no longer needed; steps after it may proceed."""
    code = _code(CancelCode, reason, "cancel reason")
    referral, row, _ = _load(
        session,
        reference,
        step,
        None,
        [StepStatus.pending, StepStatus.ready, StepStatus.accepted, StepStatus.declined],
    )
    _set_status(row, StepStatus.cancelled, now)
    row.closed_at = now
    row.next_check_at = None
    _claim(session, row)
    record(
        session,
        actor=str(actor),
        action="step-cancelled",
        now=now,
        referral_id=referral.id,
        step_id=row.id,
        detail={"step": row.key, "reason": code},
    )
    advance(session, referral=referral, catalog=catalog, now=now, actor=actor)
    return row


def cancel_referral(
    session: Session, *, reference: str, reason: str, actor: Actor, now: datetime
) -> Referral:
    """The coordinator closes a referral: every step not yet finished is cancelled."""
    code = _code(CancelCode, reason, "cancel reason")
    referral = find_referral(session, reference)
    if referral.status == ReferralStatus.cancelled:
        raise AlreadyDone("the referral is already cancelled; nothing changed")
    if referral.status != ReferralStatus.active:
        raise IllegalTransition(f"a {referral.status.value} referral cannot be cancelled")
    assert referral.id is not None
    for row in steps_of(session, referral.id):
        if (
            row.status in (StepStatus.pending, StepStatus.ready, StepStatus.accepted)
            or row.awaits_reroute
        ):
            _set_status(row, StepStatus.cancelled, now)
            row.closed_at, row.next_check_at = now, None
            _claim(session, row)
    referral.status, referral.closed_at = ReferralStatus.cancelled, now
    session.add(referral)
    record(
        session,
        actor=str(actor),
        action="referral-cancelled",
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
            f"unknown {what} {quoted(value)} (one of: {', '.join(e.value for e in enum)})"
        ) from None
