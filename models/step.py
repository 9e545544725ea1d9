"""A step of a referral: its table, the one function that says which transitions are legal, and
the versioned set-wise update of many steps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Integer, UniqueConstraint, bindparam, inspect, text, update
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Field, Session, SQLModel

from models.codes import StepStatus
from models.database import EnumText, UTCDateTime
from models.errors import AlreadyDone, IllegalTransition

OPEN = (StepStatus.ready, StepStatus.accepted)
DONE = (StepStatus.completed, StepStatus.skipped, StepStatus.cancelled)

TRANSITIONS: dict[StepStatus, set[StepStatus]] = {
    StepStatus.pending: {StepStatus.ready, StepStatus.skipped, StepStatus.cancelled},
    StepStatus.ready: {StepStatus.accepted, StepStatus.declined, StepStatus.cancelled},
    StepStatus.accepted: {StepStatus.completed, StepStatus.declined, StepStatus.cancelled},
    StepStatus.completed: set(),
    StepStatus.declined: {StepStatus.cancelled},
    StepStatus.cancelled: set(),
    StepStatus.skipped: set(),
}


def sources(target: StepStatus) -> frozenset[StepStatus]:
    """The statuses from which a step may become `target`."""
    return frozenset(status for status, targets in TRANSITIONS.items() if target in targets)


def check_transition(current: StepStatus, target: StepStatus) -> None:
    """Raise AlreadyDone if the step is already `target`, IllegalTransition if not allowed."""
    if current == target:
        raise AlreadyDone(f"the step is already {target.value}; nothing changed")
    if target not in TRANSITIONS[current]:
        hint = {
            StepStatus.completed: "accept it first",
            StepStatus.accepted: "only a ready step can be accepted",
        }.get(target, "see `rujukan referral show` for its status")
        raise IllegalTransition(f"a {current.value} step cannot become {target.value}: {hint}")


_version = Column("version", Integer, nullable=False)


class Step(SQLModel, table=True):
    """One instance of a pathway step for one referral, owned by one agency."""

    # Every index here is written by every versioned update of a step (the sweep's included: it
    # changes next_check_at, so PostgreSQL cannot update in place): each one must serve a query.
    __table_args__ = (
        # also the index of referral_id (its first column): a referral's steps, the foreign key
        UniqueConstraint("referral_id", "key", "instance", name="uq_step_instance"),
        Index("ix_step_status_due", "status", "due_at"),
        # the sweep's: only steps with a next check, the open ones, not the whole history
        Index(
            "ix_step_next_check",
            "next_check_at",
            postgresql_where=text("next_check_at IS NOT NULL"),
            sqlite_where=text("next_check_at IS NOT NULL"),
        ),
        Index("ix_step_agency_status", "agency", "status"),
        # the task force's report reads the steps of a period (models/report.py); the trend
        # counts late steps from the index alone
        Index("ix_step_ready_at", "ready_at"),
        Index("ix_step_due_at", "due_at", "status", "closed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id")
    key: str = Field(max_length=40)
    instance: int = Field(default=1, description="1, or n for a repeat / re-routed step")
    agency: str = Field(max_length=40)
    status: StepStatus = Field(
        default=StepStatus.pending, sa_column=Column(EnumText(StepStatus, 12), nullable=False)
    )
    ready_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    accepted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    outcome: str | None = Field(default=None, max_length=40)
    decline_reason: str | None = Field(default=None, max_length=40)
    offset: str | None = Field(default=None, max_length=20, description="repeat offset, e.g. P3M")
    replaced_by: int | None = Field(default=None, description="the step that re-routed this one")
    deadline_version: int = Field(default=0, description="bumped by every extension")
    reminded: bool = False
    overdue: bool = False
    escalated: bool = False
    next_check_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime()), description="next reminder/overdue check"
    )
    extension_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    extension_reason: str | None = Field(default=None, max_length=40)
    version: int = Field(default=1, sa_column=_version)

    # Every UPDATE checks and bumps `version`: two writers cannot both change the same step.
    __mapper_args__ = {"version_id_col": _version}

    @property
    def is_open(self) -> bool:
        """Ready or accepted: the agency still has to act."""
        return self.status in OPEN

    @property
    def awaits_reroute(self) -> bool:
        """Declined and not yet handed to another agency."""
        return self.status == StepStatus.declined and self.replaced_by is None

    @property
    def ref(self) -> str:
        """The step's name as commands and links take it: key#instance."""
        return f"{self.key}#{self.instance}"


def update_versioned(session: Session, changes: list[dict]) -> None:
    """Write many steps' changed columns in one executemany, each only if its version is still
    the one read (the ORM's version check, set-wise); every written step's version goes up.

    `changes`: dicts of `id`, `version` (as read) and the new values of the same columns in
    each. StaleDataError, as from a flush, when any step was changed meanwhile: the caller's
    transaction must then roll back, since the other steps of the set were written. Step objects
    the session holds for these ids are expired, so they are read again, not written stale.
    """
    if not changes:
        return
    table = Step.__table__  # type: ignore[attr-defined]
    names = [name for name in changes[0] if name not in ("id", "version")]
    statement = (
        update(table)
        .where(table.c.id == bindparam("_id"), table.c.version == bindparam("_version"))
        .values(version=table.c.version + 1, **{n: bindparam(f"_{n}") for n in names})
    )
    result = session.execute(statement, [{f"_{k}": v for k, v in c.items()} for c in changes])
    if result.rowcount != len(changes):  # type: ignore[attr-defined]
        raise StaleDataError(
            f"{len(changes) - result.rowcount} of {len(changes)} steps were changed by another "  # type: ignore[attr-defined]
            "writer since they were read"
        )
    mapper = inspect(Step)
    for change in changes:
        held = session.identity_map.get(mapper.identity_key_from_primary_key([change["id"]]))
        if held is not None:
            session.expire(held)
