"""The notification outbox: messages committed with the transition that caused them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, update
from sqlmodel import Field, Session, SQLModel, col

from models.database import EnumText, UTCDateTime
from models.errors import BadInput, NotFound


class MessageEvent(StrEnum):
    """What a message tells its recipient."""

    assigned = "assigned"
    reminder = "reminder"
    overdue = "overdue"
    escalated = "escalated"
    declined = "declined"
    extension_requested = "extension-requested"
    extension_approved = "extension-approved"
    extension_refused = "extension-refused"
    referral_completed = "referral-completed"
    report_danger = "report-danger"  # a public report says someone is in danger now
    report_answered = "report-answered"  # a reporter answered the coordinators' question


class OutboxStatus(StrEnum):
    """Delivery state of one message to one recipient."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"  # will be retried at next_attempt_at
    dead = "dead"  # gave up; a manager must look


# Only a message that failed or gave up may be queued again by hand: a pending or sending one is
# still in the relay's hands, and a sent one must not go out twice.
RETRYABLE = (OutboxStatus.failed, OutboxStatus.dead)


class OutboxMessage(SQLModel, table=True):
    """One message for one recipient tag, rendered from a template when it is sent."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(max_length=64, unique=True)
    event: MessageEvent = Field(sa_column=Column(EnumText(MessageEvent, 24), nullable=False))
    recipient: str = Field(max_length=40, description="agency slug = Apprise tag")
    referral_id: int = Field(foreign_key="referral.id", index=True)
    step_id: int | None = Field(default=None, foreign_key="step.id")
    due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: OutboxStatus = Field(
        default=OutboxStatus.pending, sa_column=Column(EnumText(OutboxStatus, 10), nullable=False)
    )
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_error: str | None = Field(default=None, max_length=300, description="no message bodies")
    delivered_to: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default="[]"),
        description="fingerprints of the recipient's channels that already have it: a retry "
        "after a partial failure skips them",
    )


def dedup_key(*parts: object) -> str:
    """A stable key for one notice: the same parts never enqueue twice."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


QUEUE = "outbox_queue"  # session.info key of the messages `queued_together` collects


@contextmanager
def queued_together(session: Session) -> Iterator[None]:
    """Messages enqueued inside go to the database together, in one statement, at the end."""
    outer = QUEUE in session.info
    if not outer:
        session.info[QUEUE] = []
    try:
        yield
        if not outer:
            enqueue_many(session, session.info[QUEUE])
    finally:
        if not outer:
            session.info.pop(QUEUE, None)


def _insert_of(session: Session):
    """The INSERT of the session's database, which has ON CONFLICT DO NOTHING. Its dialect module
    loads here, not with this module: a command on SQLite never loads PostgreSQL's."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # noqa: PLC0415
    else:
        from sqlalchemy.dialects.sqlite import insert  # noqa: PLC0415
    return insert


def enqueue(
    session: Session,
    *,
    event: MessageEvent,
    recipient: str,
    referral_id: int,
    step_id: int | None,
    due_at: datetime | None,
    key: str,
    now: datetime,
) -> bool:
    """Add a message unless one with the same dedup key exists; True if it was added (inside
    `queued_together`, it is added at the end of the block, and True says it was queued)."""
    if QUEUE in session.info:
        session.info[QUEUE].append(
            dict(
                event=event,
                recipient=recipient,
                referral_id=referral_id,
                step_id=step_id,
                due_at=due_at,
                key=key,
                now=now,
            )
        )
        return True
    values = dict(
        dedup_key=key,
        event=event.value,
        recipient=recipient,
        referral_id=referral_id,
        step_id=step_id,
        due_at=due_at,
        created_at=now,
        status=OutboxStatus.pending.value,
        attempts=0,
        next_attempt_at=now,
    )
    insert = _insert_of(session)
    statement = (
        insert(OutboxMessage).values(**values).on_conflict_do_nothing(index_elements=["dedup_key"])
    )
    return session.exec(statement).rowcount == 1  # type: ignore[call-overload]


def enqueue_many(session: Session, rows: list[dict]) -> None:
    """Add many messages in one executemany (`rows`: enqueue's keyword arguments but session);
    those whose dedup key exists already are left out."""
    if not rows:
        return
    insert = _insert_of(session)
    table = OutboxMessage.__table__
    statement = insert(table).on_conflict_do_nothing(index_elements=["dedup_key"])  # type: ignore[arg-type]
    session.execute(
        statement,
        [
            dict(
                dedup_key=row["key"],
                event=row["event"].value,
                recipient=row["recipient"],
                referral_id=row["referral_id"],
                step_id=row["step_id"],
                due_at=row["due_at"],
                created_at=row["now"],
                status=OutboxStatus.pending.value,
                attempts=0,
                next_attempt_at=row["now"],
                delivered_to=[],
            )
            for row in rows
        ],
    )


def retry_messages(session: Session, *, now: datetime, message_id: int | None = None) -> int:
    """Queue one failed or dead message (by id), or every dead one, again with fresh attempts.

    Returns how many were queued. The update re-checks the status, so a message the relay
    picked up meanwhile is left alone. NotFound for an unknown id, BadInput for a message
    that is not failed or dead.
    """
    requeue = update(OutboxMessage).values(
        status=OutboxStatus.pending, attempts=0, next_attempt_at=now, lease_until=None
    )
    if message_id is None:
        statement = requeue.where(OutboxMessage.status == OutboxStatus.dead)
    else:
        message = session.get(OutboxMessage, message_id)
        if message is None:
            raise NotFound(f"no outbox message {message_id}: see `rujukan outbox list`")
        if message.status not in RETRYABLE:
            raise BadInput(
                f"message {message_id} is {message.status.value}: only failed or dead "
                "messages can be retried"
            )
        statement = requeue.where(
            OutboxMessage.id == message_id, col(OutboxMessage.status).in_(RETRYABLE)
        )
    return session.exec(statement).rowcount  # type: ignore[call-overload]
