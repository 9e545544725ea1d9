"""The clock: now in UTC, and moments typed as ISO 8601 text (CLI options, API fields, forms)."""

from __future__ import annotations

from datetime import UTC, datetime

from models.errors import BadInput


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def parse_moment(text: str, what: str) -> datetime:
    """An ISO 8601 time with an offset, in UTC; or BadInput naming `what` and how to write it.

    The text itself is not repeated: whatever was typed in its place may be personal data.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(
            f"{what} is not an ISO 8601 time: write it like 2026-12-01T09:00+07:00"
        ) from None
    if moment.tzinfo is None:
        raise BadInput(f"{what} has no time zone: write it like 2026-12-01T09:00+07:00")
    return moment.astimezone(UTC)
