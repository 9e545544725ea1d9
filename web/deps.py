"""Per-request dependencies, as `Annotated` types that routes take as parameters.

`WebDep` is the app's resources, `Locale` the reader's language, `CookieSession` the browser's
session (if any), `Source` the client as the refusal counters know it, `PageDep` all of these
for a page handler; `PagePrincipal` is the signed-in person of a page, `Coordinator` a signed-in
coordinator (anyone else is refused, audited), `Manager` a signed-in manager or coordinator,
`Caller` the bearer of an API token.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Annotated

from fastapi import Depends, Request

from models.access import (
    TOKEN_PREFIX,
    Principal,
    check_link_issued,
    principal_of_grant,
    principal_of_link,
    principal_of_token,
)
from models.errors import Forbidden
from models.links import verify
from models.vocabulary import DEFAULT_LOCALE, LOCALES
from web.context import Web
from web.guard import SignInRequired, Unauthorized, check_link_session, refuse
from web.session import COOKIE, LANG_COOKIE, WebSession, decode


def web_of(request: Request) -> Web:
    """The app's resources."""
    return request.app.state.web


WebDep = Annotated[Web, Depends(web_of)]


def locale_of(request: Request) -> str:
    """The reader's language: the switch's cookie, else Bahasa Indonesia."""
    chosen = request.cookies.get(LANG_COOKIE)
    return chosen if chosen in LOCALES else DEFAULT_LOCALE


Locale = Annotated[str, Depends(locale_of)]


def cookie_session(request: Request) -> WebSession | None:
    """The valid session in the request's cookie, if any."""
    web = web_of(request)
    return decode(web.secret, request.cookies.get(COOKIE), web.now(), web.previous_secrets)


CookieSession = Annotated[WebSession | None, Depends(cookie_session)]


def source_of(request: Request) -> str | None:
    """The client as the refusal counters know it (web/limits.py): a salted hash, in memory."""
    return getattr(request.state, "source", None)


Source = Annotated[str | None, Depends(source_of)]


@dataclass(frozen=True)
class Page:
    """What a page handler works with: the request, the app, the reader's session and language."""

    request: Request
    web: Web
    session: WebSession | None
    locale: str
    source: str | None


def page_of(
    request: Request, web: WebDep, session: CookieSession, locale: Locale, source: Source
) -> Page:
    """The page context of a request."""
    return Page(request, web, session, locale, source)


PageDep = Annotated[Page, Depends(page_of)]


def page_principal(web: WebDep, session: CookieSession, source: Source) -> Principal:
    """The signed-in principal of a page request; a revoked grant ends the session at once."""
    if session is None or not session.signed_in:
        raise SignInRequired()
    try:
        with web.transaction() as db:
            if session.grant_id is not None:
                principal_of_grant(db, session.grant_id, web.now())
            else:
                check_link_session(db, session)
    except Forbidden as exc:
        refuse(web, session.principal(), "session", exc, source=source)
        raise Unauthorized(str(exc)) from None
    return session.principal()


PagePrincipal = Annotated[Principal, Depends(page_principal)]


def page_coordinator(web: WebDep, principal: PagePrincipal) -> Principal:
    """The signed-in coordinator; anyone else is refused (403, audited)."""
    if not principal.is_coordinator:
        exc = Forbidden("only a coordinator may open this page")
        refuse(web, principal, "coordinator-page", exc)
        raise exc
    return principal


Coordinator = Annotated[Principal, Depends(page_coordinator)]


def page_manager(web: WebDep, principal: PagePrincipal) -> Principal:
    """A signed-in manager (or coordinator); anyone else is refused (403, audited)."""
    if not (principal.is_manager or principal.is_coordinator):
        exc = Forbidden("only the task force's managers and coordinators may open this page")
        refuse(web, principal, "manager-page", exc)
        raise exc
    return principal


Manager = Annotated[Principal, Depends(page_manager)]


def api_principal(request: Request, web: WebDep, source: Source) -> Principal:
    """An API request's principal: `Authorization: Bearer` with an access token or a link token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        if source is not None:
            web.throttle.count_refusal(source)
        raise Unauthorized(
            "send 'Authorization: Bearer TOKEN' with an access token or a link token"
        )
    token = token.strip()
    try:
        with web.transaction() as db:
            if token.startswith(TOKEN_PREFIX):
                return principal_of_token(db, token, web.now())
            claim = verify(web.secret, token, web.now(), web.previous_secrets)
            check_link_issued(db, claim.agency, claim.issued)
            return principal_of_link(claim)
    except Forbidden as exc:
        refuse(web, None, "sign-in", exc, via="api", source=source)
        raise Unauthorized(str(exc)) from None


Caller = Annotated[Principal, Depends(api_principal)]


def signed_credential(web: Web, path: str, headers: dict[bytes, bytes]) -> bool:
    """True if the request carries a valid signed session cookie or link token (or opens one).

    Checked from the raw headers without the database, so that a flood of refused credentials
    does not lock out the people already signed in (web/limits.py).
    """
    try:
        morsel = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1")).get(COOKIE)
    except CookieError:
        morsel = None
    if (
        morsel is not None
        and decode(web.secret, morsel.value, web.now(), web.previous_secrets) is not None
    ):
        return True
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if path.startswith("/s/"):
        scheme, token = "bearer", path.removeprefix("/s/")
    if scheme.lower() != "bearer" or token.strip().startswith(TOKEN_PREFIX):
        return False
    try:
        verify(web.secret, token.strip(), web.now(), web.previous_secrets)
    except Forbidden:
        return False
    return True
