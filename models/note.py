"""Free-text notes an agency or coordinator adds to a step: sealed, as they may name the person."""

from __future__ import annotations

import unicodedata
from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, Session, SQLModel, select

from models.audit import record
from models.database import UTCDateTime
from models.errors import BadInput
from models.seal import Sealer
from models.vocabulary import AuditAction

MAX_NOTE = 2000


class StepNote(SQLModel, table=True):
    """One note on one step; its text is sealed like the person's record."""

    __tablename__ = "step_note"

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id", index=True)
    step_id: int = Field(foreign_key="step.id", index=True)
    author: str = Field(max_length=80, description="the actor, as in the audit trail")
    action: str = Field(max_length=40, description="the action it came with, e.g. declined")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    sealed: str = Field(sa_column=Column(Text, nullable=False))


def clean_note(text: str | None) -> str | None:
    """The note without surrounding blanks, or None; BadInput if too long or with control codes."""
    if text is None or not text.strip():
        return None
    text = text.strip().replace("\r\n", "\n")
    if len(text) > MAX_NOTE:
        raise BadInput(f"the note is longer than {MAX_NOTE} characters")
    # Line breaks and tabs are fine in a note; other control and bidi characters hide text.
    if any(unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") and c not in "\n\t" for c in text):
        raise BadInput("the note contains control or invisible formatting characters")
    return text


def add_note(
    session: Session,
    *,
    referral_id: int,
    step_id: int,
    author: str,
    action: str,
    text: str,
    sealer: Sealer,
    now: datetime,
) -> StepNote:
    """Seal and store a note; the audit trail says that a note was added, never what it says."""
    note = StepNote(
        referral_id=referral_id,
        step_id=step_id,
        author=author,
        action=action,
        created_at=now,
        sealed=sealer.seal({"text": text}),
    )
    session.add(note)
    session.flush()
    record(
        session,
        actor=author,
        action=AuditAction.note_added,
        now=now,
        referral_id=referral_id,
        step_id=step_id,
        detail={"note": note.id, "with": action},
    )
    return note


def notes_of(
    session: Session, referral_id: int, step_ids: set[int] | None = None
) -> list[StepNote]:
    """The notes of a referral (optionally only of some steps), oldest first; still sealed."""
    query = select(StepNote).where(StepNote.referral_id == referral_id).order_by(StepNote.id)
    notes = list(session.exec(query))
    return [n for n in notes if step_ids is None or n.step_id in step_ids]
