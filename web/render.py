"""Rendering: a page in the reader's language, and the error pages and answers."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from models.errors import Forbidden, IllegalTransition, NotFound, RujukanError
from web.deps import cookie_session, locale_of, web_of
from web.language import words
from web.session import WebSession

STATUS = {NotFound: 404, Forbidden: 403, IllegalTransition: 409}


def error_status(exc: RujukanError) -> int:
    """The HTTP status of an engine error."""
    for kind, status in STATUS.items():
        if isinstance(exc, kind):
            return status
    return 400


def is_api(request: Request) -> bool:
    """True for the JSON API, which answers errors in JSON."""
    return request.url.path.startswith("/api/")


def render(
    request: Request,
    name: str,
    context: dict,
    status_code: int = 200,
    session: WebSession | None = None,
) -> HTMLResponse:
    """A page in the reader's language, with the session's CSRF token for its forms."""
    web = web_of(request)
    locale = locale_of(request)
    session = session or cookie_session(request)
    me = session if session and session.signed_in else None
    page = {
        "request": request,
        "me_agency": web.catalog.agency(me.agency).name
        if me and me.agency in web.catalog.directory
        else "",
        "t": words(locale),
        "locale": locale,
        "csrf": session.csrf if session else "",
        "me": me,
        "path": request.url.path,
        **context,
    }
    return web.templates.TemplateResponse(request, name, page, status_code=status_code)


def error_page(
    request: Request, status: int, message: str = "", hint_key: str | None = None
) -> HTMLResponse:
    """An error page: a heading in the reader's language, the engine's message, a way back."""
    heading = f"error_{status}" if status in (400, 401, 403, 404, 409) else "error"
    return render(
        request,
        "error.html",
        {"status": status, "heading": heading, "message": message, "hint_key": hint_key},
        status,
    )


def error_answer(request: Request, status: int, error: str, message: str) -> Response:
    """An error as the caller reads it: JSON for the API, a page for a browser."""
    if is_api(request):
        return JSONResponse({"error": error, "message": message}, status)
    return error_page(request, status, message)
