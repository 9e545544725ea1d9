"""Disclosure of the person's facts: only what the pathway grants a step, and every view audited."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from models.audit import record
from models.errors import NotFound
from models.intake import age_group
from models.note import StepNote
from models.pathway import FACTS, StepSpec
from models.referral import Person, Referral
from models.seal import Sealer
from models.step import Step
from models.vocabulary import AuditAction


def _facts(person: dict, now: datetime) -> dict[str, object]:
    facts = {k: person.get(k) for k in FACTS if k != "age_group"}
    if person.get("birth_year"):
        facts["age_group"] = age_group(int(person["birth_year"]), now.date())
    return facts


def _open_person(session: Session, referral: Referral, sealer: Sealer) -> dict:
    person = session.exec(select(Person).where(Person.referral_id == referral.id)).first()
    if person is None:
        raise NotFound(f"referral {referral.reference} has no person record")
    return sealer.open(person.sealed)


def disclose_for_step(
    session: Session,
    *,
    referral: Referral,
    step: Step,
    spec: StepSpec,
    sealer: Sealer,
    actor: str,
    now: datetime,
) -> dict[str, object] | None:
    """The facts this step may see, in the pathway's order; the view is audited by fact name.

    Only while the step is open (ready or accepted): a closed, declined or re-routed step shows
    what the agency recorded, never the person's facts (None).
    """
    if not step.is_open:
        return None
    if not spec.sees:
        return {}
    facts = _facts(_open_person(session, referral, sealer), now)
    shown = {name: facts.get(name) for name in spec.sees}
    record(
        session,
        actor=actor,
        action=AuditAction.person_viewed,
        now=now,
        referral_id=referral.id,
        step_id=step.id,
        detail={"step": step.key, "facts": list(spec.sees)},
    )
    return shown


def disclose_all(
    session: Session, *, referral: Referral, sealer: Sealer, actor: str, now: datetime
) -> dict[str, object]:
    """Every fact of the person, for the coordinator who holds the case; audited."""
    facts = _facts(_open_person(session, referral, sealer), now)
    shown = {name: facts.get(name) for name in FACTS}
    record(
        session,
        actor=actor,
        action=AuditAction.person_viewed,
        now=now,
        referral_id=referral.id,
        detail={"facts": list(FACTS)},
    )
    return shown


def read_notes(
    session: Session,
    *,
    referral: Referral,
    notes: list[StepNote],
    sealer: Sealer,
    actor: str,
    now: datetime,
) -> list[dict[str, object]]:
    """Open sealed notes for display; reading them is a view of personal data, so it is audited."""
    if not notes:
        return []
    opened = [
        {
            "id": n.id,
            "step_id": n.step_id,
            "author": n.author,
            "action": n.action,
            "created_at": n.created_at,
            "text": sealer.open(n.sealed).get("text", ""),
        }
        for n in notes
    ]
    record(
        session,
        actor=actor,
        action=AuditAction.notes_viewed,
        now=now,
        referral_id=referral.id,
        detail={"notes": [n.id for n in notes]},
    )
    return opened
