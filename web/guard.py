"""The door of the web app: its refusals (audited), the CSRF check, withdrawn links."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from models.access import GrantKind, Principal, check_link_issued
from models.actions import record_refusal
from models.links import from_microseconds
from web.context import Web
from web.limits import Tally
from web.session import WebSession, csrf_matches

log = logging.getLogger("rujukan.web")


class SignInRequired(Exception):
    """A page needs a signed-in principal and the browser has none."""


class Unauthorized(Exception):
    """The credentials presented are not valid (unknown, expired or revoked)."""


class CsrfRefused(Exception):
    """A form came without this session's CSRF token."""


def refuse(
    web: Web,
    principal: Principal | None,
    attempt: str,
    error: Exception,
    *,
    reference: str | None = None,
    step_id: int | None = None,
    via: str = "web",
    source: str | None = None,
) -> None:
    """Record a refused attempt in the audit trail (codes and ids only), in its own transaction.

    A refused credential names its `source` (the client, as web/limits.py knows it): it spends
    the client's budget, and past the first few in a window its repeats become one entry with
    their count (web/limits.py).
    """
    now, write, repeats = web.now(), True, []
    if source is not None:
        web.throttle.count_refusal(source)
        write, repeats = web.throttle.tally(source, attempt, type(error).__name__, via, now)
    if write or repeats:
        with web.transaction() as session:
            if write:
                actor = str(principal.actor) if principal else "anonymous"
                record_refusal(
                    session, actor=actor, attempt=attempt, error=error, now=now, via=via,
                    reference=reference, step_id=step_id,
                )  # fmt: skip
            record_repeats(session, repeats, now)
    # The log line carries the attempt and error class only: never tokens, notes or facts.
    log.info("refused %s (%s) via %s", attempt, type(error).__name__, via)


def record_repeats(session: Session, tallies: list[Tally], now: datetime) -> None:
    """One audit entry per client and window for the refusals after its first."""
    for tally in tallies:
        record_refusal(
            session, actor="anonymous", attempt=tally.attempt, error=tally.error, now=now,
            via=tally.via, count=tally.repeats,
        )  # fmt: skip


def check_link_session(db: Session, session: WebSession) -> None:
    """Forbidden if a signed link opened `session` and its agency has withdrawn it since."""
    if session.signed_in and session.grant_id is None and session.kind == GrantKind.agency.value:
        issued = session.link_issued
        check_link_issued(
            db, session.agency or "", from_microseconds(issued) if issued is not None else None
        )


def check_csrf(
    web: Web,
    session: WebSession | None,
    submitted: str | None,
    attempt: str,
    principal: Principal | None = None,
    source: str | None = None,
) -> WebSession:
    """The session, if the form carries its CSRF token; otherwise an audited refusal."""
    if not csrf_matches(session, submitted):
        who = principal or (session.principal() if session and session.signed_in else None)
        refuse(web, who, attempt, CsrfRefused(), source=source)
        raise CsrfRefused()
    assert session is not None
    return session
