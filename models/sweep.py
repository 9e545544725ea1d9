"""The deadline sweep: reminders before the due time, overdue notices, and escalations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models.actions import SYSTEM, next_check, reminder_at
from models.audit import record_many
from models.catalog import Catalog, stored_pathway
from models.deadline import parse_duration
from models.outbox import MessageEvent, dedup_key, enqueue_many
from models.referral import Referral
from models.step import OPEN, Step
from models.vocabulary import AuditAction


@dataclass(frozen=True)
class Notice:
    """One notice the sweep queued: what, for which step, to whom."""

    event: str
    reference: str
    referral_id: int
    pathway: str
    step: str
    agency: str
    recipient: str
    due_at: datetime


def sweep(
    session: Session, *, catalog: Catalog, now: datetime, limit: int = 10_000
) -> list[Notice]:
    """Queue every reminder, overdue notice and escalation that is due at `now`, exactly once.

    Reads only steps whose `next_check_at` has come (an index), so an idle pass costs the same
    whatever the history. On PostgreSQL, rows another sweeper holds are skipped, not waited for.
    """
    query = (
        select(Step)
        # A closed step has no `next_check_at` (models.actions._close), so this index alone
        # finds the due steps, in order. A status condition here would lead SQLite, without
        # statistics, to the status index and a sort of every open step: the pass would grow
        # with the open caseload instead of staying flat.
        .where(Step.next_check_at <= now)  # type: ignore[operator]
        .order_by(Step.next_check_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    steps = [s for s in session.exec(query).all() if s.status in OPEN]
    # One query for the referrals, one statement for the messages, one head update for the
    # audit trail: a pass costs about the same per notice whether it records ten or ten thousand.
    referrals = {
        r.id: r
        for r in session.exec(
            select(Referral).where(col(Referral.id).in_({s.referral_id for s in steps}))
        )
    }
    notices: list[Notice] = []
    messages: list[dict] = []
    entries: list[dict] = []  # audit entries, appended to the chain together
    for step in steps:
        referral = referrals[step.referral_id]
        assert referral.id is not None and step.due_at is not None
        spec = stored_pathway(session, referral.pathway_id, referral.pathway_version).step(step.key)

        def notify(
            event: MessageEvent, recipient: str, step: Step = step, referral: Referral = referral
        ) -> None:
            messages.append(
                dict(
                    event=event,
                    recipient=recipient,
                    referral_id=referral.id,
                    step_id=step.id,
                    due_at=step.due_at,
                    now=now,
                    key=dedup_key(step.id, event.value, step.deadline_version, recipient),
                )
            )
            notices.append(
                Notice(
                    event.value,
                    referral.reference,
                    referral.id,
                    referral.pathway_id,
                    step.key,
                    step.agency,
                    recipient,
                    step.due_at,
                )
            )

        remind_at = reminder_at(step, spec)
        if remind_at is not None and not step.reminded and now >= remind_at:
            step.reminded = True
            if now < step.due_at:  # a reminder after the due time would only be noise
                notify(MessageEvent.reminder, step.agency)
        if not step.overdue and now >= step.due_at:
            step.overdue = True
            notify(MessageEvent.overdue, step.agency)
            entries.append(
                dict(
                    actor=str(SYSTEM),
                    action=AuditAction.overdue,
                    now=now,
                    referral_id=referral.id,
                    step_id=step.id,
                    detail={
                        "step": step.key,
                        "agency": step.agency,
                        "due_at": step.due_at.isoformat(),
                    },
                )
            )
        escalate_at = parse_duration(spec.escalate_after).add_to(step.due_at)
        if not step.escalated and now >= escalate_at:
            step.escalated = True
            target = catalog.escalation_target(spec, step.agency)
            notify(MessageEvent.escalated, target)
            entries.append(
                dict(
                    actor=str(SYSTEM),
                    action=AuditAction.escalated,
                    now=now,
                    referral_id=referral.id,
                    step_id=step.id,
                    detail={"step": step.key, "agency": step.agency, "to": target},
                )
            )
        step.next_check_at = next_check(step, spec)
        session.add(step)
    session.flush()
    record_many(session, entries)
    enqueue_many(session, messages)
    return notices


def open_steps_due_by(session: Session, moment: datetime) -> list[Step]:
    """Open steps whose due time is at or before `moment` (uses the status/due index)."""
    return list(
        session.exec(
            select(Step)
            .where(Step.status.in_(OPEN), Step.due_at <= moment)  # type: ignore[attr-defined,operator]
            .order_by(Step.due_at)
        )
    )
