"""A referral, its person (sealed, in a table of its own) and the recorded consent."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from models.database import EnumText, UTCDateTime

# No 0/O, 1/I/L: a code read over the phone must not be misheard.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_reference() -> str:
    """A short random reference code like RJK-7QK2-M9 (about 39 bits)."""
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
    return f"RJK-{chars[:4]}-{chars[4:]}"


class Urgency(StrEnum):
    """How fast the pathway's clocks run."""

    regular = "regular"
    emergency = "emergency"


class ReferralStatus(StrEnum):
    """Where a referral stands as a whole."""

    active = "active"
    completed = "completed"
    cancelled = "cancelled"


class Referral(SQLModel, table=True):
    """One victim's referral along one pathway version."""

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(unique=True, index=True, max_length=16)
    pathway_id: str = Field(max_length=40, index=True)
    pathway_version: int
    urgency: Urgency = Field(
        default=Urgency.regular, sa_column=Column(EnumText(Urgency, 10), nullable=False)
    )
    status: ReferralStatus = Field(
        default=ReferralStatus.active,
        sa_column=Column(EnumText(ReferralStatus, 10), nullable=False, index=True),
    )
    coordinator: str = Field(max_length=80, description="who launched it (a coordinator id)")
    coordinator_agency: str = Field(max_length=40)
    options: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    flow_run_id: str | None = Field(default=None, max_length=40)
    batch: str | None = Field(default=None, max_length=40, description="batch id of a mass launch")
    # Statistical case facts (models/intake.py CaseFacts): codes for reports, never in a message.
    exploitation: str | None = Field(default=None, max_length=20)
    case_source: str | None = Field(default=None, max_length=30)
    recruitment: str | None = Field(default=None, max_length=30)
    place: str | None = Field(default=None, max_length=6, description="ISO 3166 country/province")


class Person(SQLModel, table=True):
    """The person's identifying fields, sealed with the secret key; nothing else reads them."""

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id", unique=True)
    sealed: str = Field(sa_column=Column(Text, nullable=False))


class Consent(SQLModel, table=True):
    """Consent to share with one receiving agency, or a coordinator's recorded override."""

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id", index=True)
    agency: str | None = Field(default=None, max_length=40, description="None for an override")
    override: bool = False
    recorded_by: str = Field(max_length=80)
    # The override's reason is free text that may describe the person: sealed like the person.
    reason_sealed: str | None = Field(default=None, sa_column=Column(Text))
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
