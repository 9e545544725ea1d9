"""The browser session: a signed HttpOnly cookie with who is signed in and the CSRF token.

A link or a sign-in token is exchanged once for this cookie, so no token stays in the address
bar, the history or the access log. The cookie is signed, not encrypted: it holds ids and slugs
only. A grant-based session is re-checked against the database on every request, so revoking
the grant ends it at once.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from itsdangerous import BadData

from models.access import GrantKind, Principal
from models.keys import session_serializer

COOKIE = "rujukan_session"
LANG_COOKIE = "rujukan_lang"
SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class WebSession:
    """What the cookie says: a CSRF token, and the principal if someone is signed in."""

    csrf: str
    expires: datetime
    kind: str | None = None  # GrantKind value, None when nobody is signed in
    agency: str | None = None
    holder: str = ""
    grant_id: int | None = None
    step_ids: tuple[int, ...] | None = None
    officer: str = ""  # the name a focal point gave on a link session, for the audit trail
    link_issued: int | None = None  # a link session: when its oldest link was made (µs)

    @property
    def signed_in(self) -> bool:
        """True when the cookie names a principal."""
        return self.kind is not None

    def principal(self) -> Principal:
        """The principal as the cookie states it (grants are re-checked by the caller)."""
        assert self.kind is not None and self.agency is not None
        return Principal(
            kind=GrantKind(self.kind),
            agency=self.agency,
            holder=self.holder or self.officer,
            grant_id=self.grant_id,
            step_ids=frozenset(self.step_ids) if self.step_ids is not None else None,
        )


def anonymous(now: datetime) -> WebSession:
    """A fresh session with a new CSRF token and nobody signed in."""
    return WebSession(csrf=secrets.token_urlsafe(24), expires=now + SESSION_LIFETIME)


def signed_in(
    now: datetime,
    principal: Principal,
    until: datetime | None = None,
    previous: WebSession | None = None,
    link_issued: int | None = None,
) -> WebSession:
    """A session for `principal`, with a new CSRF token (no fixation across a sign-in).

    A step link opened while the same agency's step-link session is alive adds its step, so a
    focal point can keep several links open.
    """
    expires = min(until or now + SESSION_LIFETIME, now + SESSION_LIFETIME)
    steps = tuple(sorted(principal.step_ids)) if principal.step_ids is not None else None
    officer = ""
    if (
        previous
        and previous.signed_in
        and previous.kind == principal.kind
        and previous.agency == principal.agency
        and previous.grant_id == principal.grant_id
    ):
        officer = previous.officer
        if steps is not None and previous.step_ids is not None:
            steps = tuple(sorted(set(steps) | set(previous.step_ids)))[-50:]
        elif previous.step_ids is None:
            steps = None  # an inbox session already covers every step of the agency
        expires = max(expires, min(previous.expires, now + SESSION_LIFETIME))
        # The merged session is as old as its oldest link (an undated one counts as oldest).
        if link_issued is None or previous.link_issued is None:
            link_issued = None
        else:
            link_issued = min(link_issued, previous.link_issued)
    return WebSession(
        csrf=secrets.token_urlsafe(24),
        expires=expires,
        kind=principal.kind.value,
        agency=principal.agency,
        holder=principal.holder,
        grant_id=principal.grant_id,
        step_ids=steps,
        officer=officer,
        link_issued=link_issued,
    )


def with_officer(session: WebSession, officer: str) -> WebSession:
    """The same session, remembering the focal point's name for the next actions."""
    return replace(session, officer=officer)


def encode(secret: str, session: WebSession) -> str:
    """The cookie value: the session's fields, signed for the session purpose only."""
    return session_serializer(secret).dumps(
        {
            "c": session.csrf,
            "e": int(session.expires.timestamp()),
            "k": session.kind,
            "a": session.agency,
            "h": session.holder,
            "g": session.grant_id,
            "s": list(session.step_ids) if session.step_ids is not None else None,
            "o": session.officer,
            "l": session.link_issued,
        }
    )


def decode(
    secret: str, value: str | None, now: datetime, previous: Sequence[str] = ()
) -> WebSession | None:
    """The session in a cookie, or None if it is missing, forged, expired or not a cookie.

    A cookie signed with one of the `previous` secrets (before a key rotation) still counts.
    """
    if not value:
        return None
    try:
        data = session_serializer(secret, previous).loads(
            value
        )  # a link token fails here: another salt
        session = WebSession(
            csrf=str(data["c"]),
            expires=datetime.fromtimestamp(int(data["e"]), tz=UTC),
            kind=data["k"],
            agency=data["a"],
            holder=data["h"] or "",
            grant_id=data["g"],
            step_ids=tuple(int(s) for s in data["s"]) if data["s"] is not None else None,
            officer=data.get("o") or "",
            link_issued=data.get("l") if isinstance(data.get("l"), int) else None,
        )
    except (BadData, ValueError, TypeError, KeyError, OverflowError):
        return None
    return session if session.expires > now else None


def csrf_matches(session: WebSession | None, submitted: str | None) -> bool:
    """True if the form carries this session's CSRF token."""
    return bool(session and submitted and hmac.compare_digest(session.csrf, submitted))
