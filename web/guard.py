"""The door of the web app: who is asking (cookie or bearer token), CSRF, and audited refusals."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import Request

from models.access import (
    TOKEN_PREFIX,
    GrantKind,
    Principal,
    check_link_issued,
    principal_of_grant,
    principal_of_link,
    principal_of_token,
)
from models.engine import record_refusal
from models.errors import Forbidden
from models.links import from_microseconds, verify
from web.language import DEFAULT_LOCALE, LOCALES
from web.session import COOKIE, LANG_COOKIE, WebSession, csrf_matches, decode

if TYPE_CHECKING:
    from web.app import Web

log = logging.getLogger("rujukan.web")


class SignInRequired(Exception):
    """A page needs a signed-in principal and the browser has none."""


class Unauthorized(Exception):
    """The credentials presented are not valid (unknown, expired or revoked)."""


class CsrfRefused(Exception):
    """A form came without this session's CSRF token."""


def web_of(request: Request) -> Web:
    """The app's resources."""
    return request.app.state.web


def locale_of(request: Request) -> str:
    """The reader's language: the switch's cookie, else Bahasa Indonesia."""
    chosen = request.cookies.get(LANG_COOKIE)
    return chosen if chosen in LOCALES else DEFAULT_LOCALE


def cookie_session(request: Request) -> WebSession | None:
    """The valid session in the request's cookie, if any."""
    web = web_of(request)
    return decode(web.secret, request.cookies.get(COOKIE), web.now())


def refuse(
    web: Web,
    principal: Principal | None,
    attempt: str,
    error: Exception,
    *,
    reference: str | None = None,
    step_id: int | None = None,
    via: str = "web",
) -> None:
    """Record a refused attempt in the audit trail (codes and ids only), in its own transaction."""
    with web.transaction() as session:
        record_refusal(
            session,
            actor=str(principal.actor) if principal else "anonymous",
            attempt=attempt,
            error=error,
            now=web.now(),
            via=via,
            reference=reference,
            step_id=step_id,
        )
    # The log line carries the attempt and error class only: never tokens, notes or facts.
    log.info("refused %s (%s) via %s", attempt, type(error).__name__, via)


def check_link_session(db, session: WebSession) -> None:
    """Forbidden if a signed link opened `session` and its agency has withdrawn it since."""
    if session.signed_in and session.grant_id is None and session.kind == GrantKind.agency.value:
        issued = session.link_issued
        check_link_issued(
            db, session.agency or "", from_microseconds(issued) if issued is not None else None
        )


def page_principal(request: Request) -> Principal:
    """The signed-in principal of a page request; a revoked grant ends the session at once."""
    session = cookie_session(request)
    if session is None or not session.signed_in:
        raise SignInRequired()
    web = web_of(request)
    try:
        with web.transaction() as db:
            if session.grant_id is not None:
                principal_of_grant(db, session.grant_id, web.now())
            else:
                check_link_session(db, session)
    except Forbidden as exc:
        refuse(web, session.principal(), "session", exc)
        raise Unauthorized(str(exc)) from None
    return session.principal()


def api_principal(request: Request) -> Principal:
    """The principal of an API request: `Authorization: Bearer` with an access token or a link token."""
    web = web_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "send 'Authorization: Bearer TOKEN' with an access token or a link token"
        )
    token = token.strip()
    try:
        with web.transaction() as db:
            if token.startswith(TOKEN_PREFIX):
                return principal_of_token(db, token, web.now())
            claim = verify(web.secret, token, web.now())
            check_link_issued(db, claim.agency, claim.issued)
            return principal_of_link(claim)
    except Forbidden as exc:
        refuse(web, None, "sign-in", exc, via="api")
        raise Unauthorized(str(exc)) from None


def check_csrf(
    request: Request, submitted: str | None, attempt: str, principal: Principal | None = None
) -> WebSession:
    """The session, if the form carries its CSRF token; otherwise an audited refusal."""
    session = cookie_session(request)
    if not csrf_matches(session, submitted):
        web = web_of(request)
        who = principal or (session.principal() if session and session.signed_in else None)
        refuse(web, who, attempt, CsrfRefused())
        raise CsrfRefused()
    assert session is not None
    return session
