"""Accounting checks run after chaos: what the database recorded must add up, exactly once."""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session, select

from models.audit import AuditEntry, verify_chain
from models.outbox import OutboxMessage
from models.step import Step, StepStatus, check_transition

TARGETS = {
    "ready": StepStatus.ready,
    "accepted": StepStatus.accepted,
    "completed": StepStatus.completed,
    "declined": StepStatus.declined,
    "skipped": StepStatus.skipped,
    "step-cancelled": StepStatus.cancelled,
}


def accounting_problems(session: Session) -> list[str]:
    """Every way the records fail to add up: a broken audit chain, a transition recorded twice or
    not at all (each step's audit entries must replay to its status), a doubled notice, or an
    open step instance alongside another."""
    problems = [f"audit entry {b.seq}: {b.problem}" for b in verify_chain(session)]
    steps = session.exec(select(Step)).all()
    by_step: dict[int, list[str]] = {}
    for entry in session.exec(select(AuditEntry).order_by(AuditEntry.seq)):
        if entry.step_id is not None:
            by_step.setdefault(entry.step_id, []).append(entry.action)
    for step in steps:
        status = StepStatus.pending
        for action in by_step.get(step.id, []):
            if action == "rerouted" and status != StepStatus.declined:
                action = "step-cancelled"
            if action in TARGETS:
                try:
                    check_transition(status, TARGETS[action])
                except Exception:  # noqa: BLE001  (a doubled or impossible transition)
                    problems.append(f"step {step.id}: audit has {action} after {status.value}")
                status = TARGETS[action]
        if status != step.status:
            problems.append(
                f"step {step.id}: audit replays to {status.value}, table says {step.status.value}"
            )
    live = Counter(
        (s.referral_id, s.key)
        for s in steps
        if (s.is_open or s.awaits_reroute) and s.offset is None
    )
    problems += [
        f"referral {r} step {k}: {n} open instances" for (r, k), n in live.items() if n > 1
    ]
    # Deadline notices come once per step and deadline; extension answers may legitimately repeat
    # (two requests, two refusals), so they are not counted here.
    notices = Counter(
        (m.step_id, m.event, m.recipient, m.due_at)
        for m in session.exec(select(OutboxMessage))
        if m.event.value in ("assigned", "reminder", "overdue", "escalated")
    )
    problems += [f"notice {key} queued {n} times" for key, n in notices.items() if n > 1]
    return problems
