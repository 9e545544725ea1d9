"""How referrals and steps are shown on the command line (text and JSON)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from models.actions import steps_of
from models.audit import AuditEntry
from models.catalog import Catalog, stored_pathway
from models.clock import utcnow
from models.deadline import local_time_text
from models.referral import Referral
from models.step import Step


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def step_row(step: Step, reference: str, now: datetime, catalog: Catalog) -> dict:
    """One step as the scripting contract describes it (times in UTC ISO 8601 with offset)."""
    tz = catalog.agency(step.agency).timezone
    return {
        "reference": reference,
        "step": step.key,
        "instance": step.instance,
        "agency": step.agency,
        "status": step.status.value,
        "due_at": _iso(step.due_at),
        "due_local": local_time_text(step.due_at, tz) if step.due_at else None,
        "overdue": bool(step.is_open and step.due_at and step.due_at <= now),
        "escalated": step.escalated,
        "ready_at": _iso(step.ready_at),
        "accepted_at": _iso(step.accepted_at),
        "closed_at": _iso(step.closed_at),
        "outcome": step.outcome,
        "decline_reason": step.decline_reason,
        "extension_requested_until": _iso(step.extension_until),
    }


def referral_timeline(
    session: Session, referral: Referral, catalog: Catalog, now: datetime | None = None
) -> dict:
    """A referral with its steps and audit trail; no personal data."""
    now = now or utcnow()
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    assert referral.id is not None
    audit = session.exec(
        select(AuditEntry).where(AuditEntry.referral_id == referral.id).order_by(AuditEntry.seq)
    ).all()
    return {
        "reference": referral.reference,
        "pathway": referral.pathway_id,
        "pathway_version": referral.pathway_version,
        "pathway_title": pathway.title.model_dump(),
        "urgency": referral.urgency.value,
        "status": referral.status.value,
        "created_at": _iso(referral.created_at),
        "steps": [
            {
                **step_row(s, referral.reference, now, catalog),
                "title": pathway.step(s.key).title.model_dump(),
                "basis": pathway.step(s.key).basis,
            }
            for s in steps_of(session, referral.id)
        ],
        "audit": [
            {
                "seq": a.seq,
                "at": _iso(a.at),
                "actor": a.actor,
                "action": a.action,
                "detail": a.detail,
            }
            for a in audit
        ],
    }


def timeline_text(data: dict) -> str:
    """The timeline for people."""
    lines = [
        f"{data['reference']}  {data['pathway']} v{data['pathway_version']}  "
        f"{data['urgency']}  {data['status']}",
        "",
        "steps:",
    ]
    for s in data["steps"]:
        flag = "  OVERDUE" if s["overdue"] else ""
        lines.append(
            f"  {s['step']}#{s['instance']:<3} {s['agency']:<11} {s['status']:<9} "
            f"due {s['due_local'] or '-'}{flag}"
        )
    lines += ["", "audit:"]
    for a in data["audit"]:
        detail = " ".join(f"{k}={v}" for k, v in a["detail"].items())
        lines.append(f"  {a['at'][:19]}  {a['actor']:<28} {a['action']:<20} {detail}")
    return "\n".join(lines)
