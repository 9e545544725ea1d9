"""What the pages and the JSON API show: steps, inboxes and timelines as plain dicts (no PII here,
except in the facts and notes that the disclosure functions return and audit)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from models.access import Principal
from models.actions import steps_of
from models.audit import AuditEntry
from models.catalog import Catalog, stored_pathway
from models.deadline import local_time_text
from models.referral import Consent, Referral, ReferralStatus
from models.step import OPEN, Step, StepStatus
from models.vocabulary import AuditAction, DeclineCode, ExtensionCode, OutcomeCode, label
from web.language import time_left_text


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def step_view(
    step: Step, referral: Referral, session: Session, catalog: Catalog, now: datetime, locale: str
) -> dict:
    """One step with its title, agency, due time (local and UTC), time left and labels."""
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    spec = pathway.step(step.key)
    agency = catalog.agency(step.agency)
    overdue = bool(step.is_open and step.due_at and step.due_at <= now)
    return {
        "id": step.id,
        "reference": referral.reference,
        "step": step.key,
        "instance": step.instance,
        "title": spec.title.text(locale),
        "titles": spec.title.model_dump(),
        "basis": spec.basis,
        "agency": step.agency,
        "agency_name": agency.name,
        "status": step.status.value,
        "status_label": label(StepStatus, step.status, locale),
        "open": step.is_open,
        "awaits_reroute": step.awaits_reroute,
        "due_at": _iso(step.due_at),
        "due_local": local_time_text(step.due_at, agency.timezone) if step.due_at else None,
        "time_left": time_left_text(step.due_at, now, locale) if step.is_open else "",
        "overdue": overdue,
        "escalated": step.escalated,
        "ready_at": _iso(step.ready_at),
        "accepted_at": _iso(step.accepted_at),
        "closed_at": _iso(step.closed_at),
        "outcome": step.outcome,
        "outcome_label": label(OutcomeCode, step.outcome, locale),
        "decline_reason": step.decline_reason,
        "decline_reason_label": label(DeclineCode, step.decline_reason, locale),
        "extension_requested_until": _iso(step.extension_until),
        "extension_local": (
            local_time_text(step.extension_until, agency.timezone) if step.extension_until else None
        ),
        "extension_reason": step.extension_reason,
        "extension_reason_label": label(ExtensionCode, step.extension_reason, locale),
        "timezone": agency.timezone,
        "sees": list(spec.sees),
    }


def inbox(
    session: Session, principal: Principal, catalog: Catalog, now: datetime, locale: str
) -> list[dict]:
    """The principal's open steps: overdue first, then by due time (a coordinator sees all)."""
    query = select(Step).where(Step.status.in_([s.value for s in OPEN]))  # type: ignore[attr-defined]
    if not principal.is_coordinator:
        query = query.where(Step.agency == principal.agency)
    steps = [
        s for s in session.exec(query) if principal.step_ids is None or s.id in principal.step_ids
    ]
    referrals = {
        r.id: r
        for r in session.exec(
            select(Referral).where(Referral.id.in_({s.referral_id for s in steps}))
        )
    }  # type: ignore[union-attr]
    rows = [step_view(s, referrals[s.referral_id], session, catalog, now, locale) for s in steps]
    far = "9999"
    rows.sort(key=lambda r: (not r["overdue"], r["due_at"] or far, r["reference"]))
    return rows


def referral_list(
    session: Session, catalog: Catalog, now: datetime, locale: str, include_closed: bool = False
) -> list[dict]:
    """Referrals for the coordinator: those that need attention first, then the newest."""
    query = select(Referral).order_by(Referral.created_at.desc())  # type: ignore[attr-defined]
    if not include_closed:
        query = query.where(Referral.status == ReferralStatus.active)
    rows = []
    for referral in session.exec(query.limit(500)):
        assert referral.id is not None
        steps = steps_of(session, referral.id)
        pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
        open_steps = [s for s in steps if s.is_open]
        rows.append(
            {
                "reference": referral.reference,
                "pathway": referral.pathway_id,
                "pathway_title": pathway.title.text(locale),
                "urgency": referral.urgency.value,
                "status": referral.status.value,
                "status_label": label(ReferralStatus, referral.status, locale),
                "created_at": _iso(referral.created_at),
                "created_local": local_time_text(
                    referral.created_at, catalog.agency(referral.coordinator_agency).timezone
                ),
                "open_steps": len(open_steps),
                "done_steps": len([s for s in steps if s.status == StepStatus.completed]),
                "total_steps": len(steps),
                "overdue": sum(1 for s in open_steps if s.due_at and s.due_at <= now),
                "awaiting_reroute": sum(1 for s in steps if s.awaits_reroute),
                "extensions": sum(1 for s in open_steps if s.extension_until),
            }
        )
    # stable sort: within each group the newest stays first
    rows.sort(key=lambda r: r["overdue"] + r["awaiting_reroute"] + r["extensions"] == 0)
    return rows


def _readable(detail: dict, tz: str) -> dict:
    """Audit detail for people: times in local time (the stored entry is unchanged)."""
    shown = {}
    for key, value in detail.items():
        if key in ("due_at", "until") and isinstance(value, str):
            try:
                value = local_time_text(datetime.fromisoformat(value), tz)
            except ValueError:
                pass
        shown[key] = value
    return shown


def timeline(
    session: Session, referral: Referral, catalog: Catalog, now: datetime, locale: str
) -> dict:
    """A referral with its steps, consent and audit trail (codes and ids only; no PII)."""
    assert referral.id is not None
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    audit = session.exec(
        select(AuditEntry).where(AuditEntry.referral_id == referral.id).order_by(AuditEntry.seq)
    ).all()
    consents = session.exec(select(Consent).where(Consent.referral_id == referral.id)).all()
    tz = catalog.agency(referral.coordinator_agency).timezone
    return {
        "reference": referral.reference,
        "pathway": referral.pathway_id,
        "pathway_version": referral.pathway_version,
        "pathway_title": pathway.title.text(locale),
        "urgency": referral.urgency.value,
        "status": referral.status.value,
        "status_label": label(ReferralStatus, referral.status, locale),
        "coordinator": referral.coordinator,
        "coordinator_agency": referral.coordinator_agency,
        "created_at": _iso(referral.created_at),
        "created_local": local_time_text(referral.created_at, tz),
        "closed_at": _iso(referral.closed_at),
        "consent": {
            "agencies": sorted(c.agency for c in consents if c.agency),
            "override": any(c.override for c in consents),
            "override_by": next((c.recorded_by for c in consents if c.override), None),
        },
        "steps": [
            step_view(s, referral, session, catalog, now, locale)
            for s in steps_of(session, referral.id)
        ],
        "audit": [
            {
                "seq": a.seq,
                "at": _iso(a.at),
                "at_local": local_time_text(a.at, tz),
                "actor": a.actor,
                "action": a.action,
                "action_label": label(AuditAction, a.action, locale),
                "step_id": a.step_id,
                "detail": _readable(a.detail, tz),
            }
            for a in audit
        ],
    }


def late_steps(
    session: Session, catalog: Catalog, now: datetime, locale: str
) -> list[tuple[str, list[dict]]]:
    """Open steps past their deadline or escalated, grouped by agency, most late agency first.

    Step statuses, deadlines and reference codes only: a manager sees no personal data.
    """
    steps = session.exec(
        select(Step).where(
            col(Step.status).in_([s.value for s in OPEN]),
            or_(Step.due_at <= now, col(Step.escalated)),
        )
    ).all()
    referrals = {
        r.id: r
        for r in session.exec(
            select(Referral).where(col(Referral.id).in_({s.referral_id for s in steps}))
        )
    }
    groups: dict[str, list[dict]] = {}
    for step in steps:
        view = step_view(step, referrals[step.referral_id], session, catalog, now, locale)
        groups.setdefault(view["agency_name"], []).append(view)
    far = "9999"
    for rows in groups.values():
        rows.sort(key=lambda r: (r["due_at"] or far, r["reference"]))
    return sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))
