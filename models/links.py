"""Signed, expiring links: one agency and one step, or one agency's inbox (HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from models.errors import Forbidden
from models.seal import signing_key

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LinkClaim:
    """What a signed link grants: an agency, optionally one step, until a moment."""

    agency: str
    step_id: int | None
    expires: datetime
    issued: datetime | None = None  # links signed before an agency's cutoff no longer work


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def microseconds(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding at an agency's cutoff)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_microseconds(value: int) -> datetime:
    """The moment `microseconds` wrote."""
    return EPOCH + timedelta(microseconds=value)


def sign(secret: str, claim: LinkClaim) -> str:
    """A token carrying the claim and its HMAC; it holds ids only, never personal data."""
    fields = {"a": claim.agency, "s": claim.step_id, "e": int(claim.expires.timestamp())}
    if claim.issued is not None:
        fields["i"] = microseconds(claim.issued)
    body = json.dumps(fields, separators=(",", ":")).encode()
    mac = hmac.new(signing_key(secret), body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def verify(secret: str, token: str, now: datetime) -> LinkClaim:
    """The claim of a valid, unexpired token; Forbidden otherwise (without saying which part failed)."""
    try:
        body_text, mac_text = token.split(".", 1)
        body = _unb64(body_text)
        good = hmac.compare_digest(
            hmac.new(signing_key(secret), body, hashlib.sha256).digest(), _unb64(mac_text)
        )
        data = json.loads(body) if good else None
    except (ValueError, TypeError):
        data = None
    if not data:
        raise Forbidden("this link is not valid: ask the coordinator for a new one")
    issued = data.get("i")
    claim = LinkClaim(
        agency=data["a"],
        step_id=data["s"],
        expires=datetime.fromtimestamp(data["e"], tz=UTC),
        issued=from_microseconds(issued) if isinstance(issued, int) else None,
    )
    if claim.expires <= now:
        raise Forbidden("this link has expired: ask the coordinator for a new one")
    return claim
