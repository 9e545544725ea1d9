"""The audit trail: append-only, hash-chained, carrying codes and ids, never personal data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import JSON, Column, insert
from sqlmodel import Field, Session, SQLModel, select

from models.database import UTCDateTime
from models.errors import BadInput

GENESIS = "0" * 64


class AuditEntry(SQLModel, table=True):
    """One thing that happened: who, when, what, on which referral and step."""

    seq: int = Field(primary_key=True, description="1, 2, 3... without gaps")
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    actor: str = Field(max_length=80, description="e.g. agency:dinsos/ani, coordinator:c-1, system")
    action: str = Field(max_length=40, index=True)
    referral_id: int | None = Field(default=None, index=True)
    step_id: int | None = None
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The chain's newest link; locking this row serialises writers on PostgreSQL."""

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default=GENESIS, max_length=64)


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    """The hash that links `entry` to the one before it."""
    body = json.dumps(
        {
            "seq": entry.seq,
            "at": entry.at.isoformat(),
            "actor": entry.actor,
            "action": entry.action,
            "referral_id": entry.referral_id,
            "step_id": entry.step_id,
            "detail": entry.detail,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    now: datetime,
    referral_id: int | None = None,
    step_id: int | None = None,
    detail: dict | None = None,
) -> AuditEntry:
    """Append one audit entry to the chain, in the caller's transaction.

    The chain's head is read (and on PostgreSQL locked) once per transaction and kept in the
    session; entries are linked in memory and written together at the next flush, with one
    update of the head at commit. A batch of a thousand entries costs one head read and write,
    not a thousand.
    """
    head = _head(session)
    entry = AuditEntry(
        seq=head.seq + 1,
        at=now,
        actor=actor,
        action=action,
        referral_id=referral_id,
        step_id=step_id,
        detail=detail or {},
        prev_hash=head.hash,
        hash="",
    )
    entry.hash = entry_hash(head.hash, entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.add(entry)
    return entry


def record_many(session: Session, entries: list[dict]) -> None:
    """Append many entries (each: record's keyword arguments but session) in one executemany,
    linked in memory from the head this transaction holds."""
    if not entries:
        return
    head = _head(session)
    seq, prev_hash = head.seq, head.hash  # kept in locals: the head object is set once, after
    rows = []
    for values in entries:
        seq += 1
        row = SimpleNamespace(
            seq=seq,
            at=values["now"],
            actor=values["actor"],
            action=str(values["action"]),
            referral_id=values.get("referral_id"),
            step_id=values.get("step_id"),
            detail=values.get("detail") or {},
            prev_hash=prev_hash,
        )
        row.hash = prev_hash = entry_hash(prev_hash, row)  # type: ignore[arg-type]
        rows.append(vars(row))
    head.seq, head.hash = seq, prev_hash
    session.add(head)
    session.execute(insert(AuditEntry.__table__), rows)  # type: ignore[arg-type]


def _head(session: Session) -> AuditHead:
    """The chain's head for this transaction: locked and read at its first entry, then kept."""
    transaction = session.get_transaction()
    held = session.info.get("audit_head")
    if held is not None and held[0] is transaction and held[1] in session:
        return held[1]
    head = session.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update()).first()
    if head is None:
        head = AuditHead(id=1)
        session.add(head)
    session.info["audit_head"] = (transaction, head)
    return head


@dataclass(frozen=True)
class ChainBreak:
    """Where the chain does not hold, and why."""

    seq: int
    problem: str


def verify_chain(session: Session, *, anchor: str | None = None) -> list[ChainBreak]:
    """Walk the whole chain; return every changed, missing or inserted entry.

    `anchor` is an entry's SEQ:HASH saved earlier apart from the database (see `chain_head`):
    the chain must still hold it, which catches a chain rewritten from that entry on.
    """
    breaks = _walk_chain(session)
    if anchor is not None:
        breaks.extend(check_anchor(session, anchor))
    return breaks


def chain_head(session: Session) -> str | None:
    """The newest entry as SEQ:HASH, the anchor to keep apart; None for an empty trail."""
    head = session.get(AuditHead, 1)
    return f"{head.seq}:{head.hash}" if head is not None else None


def check_anchor(session: Session, anchor: str) -> list[ChainBreak]:
    """The break if the chain no longer holds the entry saved as SEQ:HASH; BadInput if malformed."""
    seq_text, _, hash_text = anchor.partition(":")
    if not seq_text.isdigit() or len(hash_text) != 64:
        raise BadInput("the anchor: write it as SEQ:HASH, as `rujukan audit verify` prints it")
    held = session.get(AuditEntry, int(seq_text))
    if held is None or held.hash != hash_text.lower():
        return [
            ChainBreak(
                int(seq_text), "is not the entry saved as the anchor (the chain was rewritten)"
            )
        ]
    return []


def _walk_chain(session: Session) -> list[ChainBreak]:
    breaks: list[ChainBreak] = []
    prev_hash, expected_seq = GENESIS, 1
    for entry in session.exec(select(AuditEntry).order_by(AuditEntry.seq)):
        if entry.seq != expected_seq:
            breaks.append(
                ChainBreak(expected_seq, f"entries {expected_seq}..{entry.seq - 1} are missing")
            )
        elif entry.prev_hash != prev_hash:
            breaks.append(
                ChainBreak(
                    entry.seq, "does not link to the entry before it (inserted or reordered)"
                )
            )
        if entry_hash(entry.prev_hash, entry) != entry.hash:
            breaks.append(ChainBreak(entry.seq, "its content was changed after it was written"))
        prev_hash, expected_seq = entry.hash, entry.seq + 1
    last = expected_seq - 1
    head = session.get(AuditHead, 1)
    if head is not None and head.seq > last:
        breaks.append(ChainBreak(head.seq, f"the newest entries after {last} are missing"))
    elif head is not None and head.seq < last:
        breaks.append(
            ChainBreak(
                head.seq + 1,
                f"entries {head.seq + 1}..{last} were added "
                "outside the engine (the chain's head is "
                f"{head.seq})",
            )
        )
    elif head is not None and head.hash != prev_hash:
        breaks.append(ChainBreak(last, "does not match the chain's head (replaced)"))
    return breaks
