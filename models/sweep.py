"""The deadline sweep: reminders before the due time, overdue notices, and escalations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlmodel import Session, col, select

from models.actions import SYSTEM, earliest_check, escalation_at, reminder_at
from models.audit import record_many
from models.catalog import Catalog, stored_pathway
from models.outbox import MessageEvent, dedup_key, enqueue_many
from models.referral import Referral
from models.step import OPEN, Step, update_versioned
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

    A pass works on plain rows, set-wise: one query for the due steps' columns, one for their
    referrals, then one executemany each for the step changes (versioned: a step changed since
    it was read fails the pass, as a flush would), the audit entries (one head update) and the
    messages. No ORM object is made or flushed per step: a pass costs about the same per notice
    whether it records ten or ten thousand.
    """
    query = (
        select(*DUE_COLUMNS)
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
    steps = [
        SimpleNamespace(**row._mapping)
        for row in session.execute(query)
        if row.status in OPEN  # type: ignore[attr-defined]
    ]
    referrals = {
        row.id: row
        for row in session.execute(
            select(
                Referral.id, Referral.reference, Referral.pathway_id, Referral.pathway_version
            ).where(col(Referral.id).in_({s.referral_id for s in steps}))
        )
    }
    notices: list[Notice] = []
    messages: list[dict] = []
    entries: list[dict] = []  # audit entries, appended to the chain together
    changes: list[dict] = []  # the steps' new flags and next check, written together
    for step in steps:
        referral = referrals[step.referral_id]
        assert step.due_at is not None
        pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
        spec = pathway.step(step.key)
        before = (step.reminded, step.overdue, step.escalated, step.next_check_at)

        def notify(event: MessageEvent, recipient: str, step=step, referral=referral) -> None:
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

        remind_at = reminder_at(step, spec)  # type: ignore[arg-type]
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
        escalate_at = escalation_at(step, spec)  # type: ignore[arg-type]
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
        step.next_check_at = earliest_check(step, remind_at, escalate_at)  # type: ignore[arg-type]
        if (step.reminded, step.overdue, step.escalated, step.next_check_at) != before:
            changes.append(
                {
                    "id": step.id,
                    "version": step.version,
                    "reminded": step.reminded,
                    "overdue": step.overdue,
                    "escalated": step.escalated,
                    "next_check_at": step.next_check_at,
                }
            )
    update_versioned(session, changes)
    record_many(session, entries)
    enqueue_many(session, messages)
    return notices


# What a pass reads of a due step: what the rules look at, and the version it must still have.
DUE_COLUMNS = (
    Step.id,
    Step.referral_id,
    Step.key,
    Step.agency,
    Step.status,
    Step.ready_at,
    Step.due_at,
    Step.deadline_version,
    Step.reminded,
    Step.overdue,
    Step.escalated,
    Step.next_check_at,
    Step.version,
)


def open_steps_due_by(session: Session, moment: datetime) -> list[Step]:
    """Open steps whose due time is at or before `moment` (uses the status/due index)."""
    return list(
        session.exec(
            select(Step)
            .where(Step.status.in_(OPEN), Step.due_at <= moment)  # type: ignore[attr-defined,operator]
            .order_by(Step.due_at)
        )
    )
