"""Signed, expiring links: one agency and one step, or one agency's inbox (itsdangerous)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadData

from models.errors import Forbidden
from models.keys import link_serializer

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LinkClaim:
    """What a signed link grants: an agency, optionally one step, until a moment."""

    agency: str
    step_id: int | None
    expires: datetime
    issued: datetime | None = None  # links signed before an agency's cutoff no longer work


def microseconds(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding at an agency's cutoff)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_microseconds(value: int) -> datetime:
    """The moment `microseconds` wrote."""
    return EPOCH + timedelta(microseconds=value)


def sign(secret: str, claim: LinkClaim) -> str:
    """A token carrying the claim; it holds ids only, never personal data.

    The payload is a list, not an object, to keep links short enough for SMS:
    [agency, step id or null, expiry (epoch seconds), issued (epoch µs, only when known)].
    """
    fields: list[str | int | None] = [claim.agency, claim.step_id, int(claim.expires.timestamp())]
    if claim.issued is not None:
        fields.append(microseconds(claim.issued))
    return link_serializer(secret).dumps(fields)


def verify(secret: str, token: str, now: datetime, previous: Sequence[str] = ()) -> LinkClaim:
    """The claim of a valid, unexpired token; Forbidden otherwise (never saying what failed).

    A token signed with one of the `previous` secrets (before a key rotation) is still valid.
    """
    try:
        agency, step_id, expires, *rest = link_serializer(secret, previous).loads(token)
        issued = rest[0] if rest else None
        if not isinstance(agency, str) or not isinstance(step_id, int | None):
            raise TypeError  # only this module signs with this key: never widen a step link
        claim = LinkClaim(
            agency=agency,
            step_id=step_id,
            expires=datetime.fromtimestamp(expires, tz=UTC),
            issued=from_microseconds(issued) if isinstance(issued, int) else None,
        )
    except (BadData, ValueError, TypeError, OverflowError):
        # A forged or altered token, another purpose's token (a session cookie), or no token.
        raise Forbidden("this link is not valid: ask the coordinator for a new one") from None
    if claim.expires <= now:
        raise Forbidden("this link has expired: ask the coordinator for a new one")
    return claim
