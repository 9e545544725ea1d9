"""The web app: `create_app(settings)` assembles the inbox, the coordinator pages and the JSON API.

Server-rendered HTML (Jinja2, autoescaped), no scripts, Bahasa Indonesia by default; a JSON API
for the same actions under /api (reference at /docs, schema at /openapi.json). All domain rules
live in models/; web/ checks who is asking (deps.py), calls the engine on the one path of an
action (action.py) and renders the answer (render.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import RujukanError, describe
from models.settings import Settings
from web.access_log import install_redaction
from web.api import api
from web.context import build_web
from web.deps import signed_credential
from web.guard import CsrfRefused, SignInRequired, Unauthorized, record_repeats
from web.lapor import public, webhook
from web.limits import Door
from web.monitoring import monitoring
from web.pages import pages
from web.public_report_pages import public_report_pages
from web.render import error_answer, error_page, error_status, is_api, render
from web.session import COOKIE

STATIC = Path(__file__).resolve().parent / "static"

# No script, no external resource: the pages work offline on any phone browser.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _without_body(loc: list[str | int]) -> tuple[str, int] | None:
    """FastAPI's locations start with 'body': leave that part out of the message."""
    return ("", 1) if loc[:1] == ["body"] else None


def create_app(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The web app for `settings`; `rujukan serve` runs it with uvicorn (see web/access_log.py)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Logging is configured by now (uvicorn does it before startup): make sure the access
        # log cannot record a link token, whatever configuration the server was started with.
        install_redaction()
        yield
        # Refusals counted but not yet written (a flood's last window) reach the audit trail.
        repeats = web.throttle.drain()
        if repeats:
            with web.transaction() as session:
                record_repeats(session, repeats, web.now())

    app = FastAPI(
        title="Rujukan web inbox API",
        version="1",
        description="Agency and coordinator actions on referrals. Authenticate with "
        "`Authorization: Bearer TOKEN` (a personal access token from `rujukan access issue`, "
        "or the token of a signed link). No personal data in URLs.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    web = app.state.web = build_web(settings, clock)
    install_redaction()

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.url.path.startswith("/static/"):
            # Pages may hold the person's facts: never keep them in a shared phone's cache.
            response.headers["Cache-Control"] = "no-store"
        if web.secure_cookies:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    @app.exception_handler(RujukanError)
    async def engine_error(request: Request, exc: RujukanError):
        return error_answer(request, error_status(exc), type(exc).__name__, str(exc))

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized):
        if is_api(request):
            return JSONResponse(
                {"error": "Unauthorized", "message": str(exc)},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        response = render(request, "signin.html", {"refused": "token_refused"}, 401)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, _exc: SignInRequired):
        # Back to the page asked for once signed in (a path of this site only; no query). Not
        # for a form's POST: going back to it would be a GET the address does not answer.
        if request.method != "GET":
            return RedirectResponse("/signin", status_code=303)
        target = quote(request.url.path, safe="/")
        return RedirectResponse(f"/signin?next={target}", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _exc: CsrfRefused):
        return error_page(request, 403, hint_key="csrf_refused")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        # FastAPI's default answer echoes the input, which may be the person's data: the fields
        # of the body's model only, never a key or value that was typed.
        problems = describe(exc, subject="body", label=_without_body)
        return error_answer(request, 400, "BadInput", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if is_api(request) or exc.status_code not in (404, 405):
            return JSONResponse({"error": "HTTPError", "message": str(exc.detail)}, exc.status_code)
        return error_page(request, exc.status_code)

    # Outermost: throttled clients and oversized bodies are answered before anything is read.
    app.add_middleware(
        Door, throttle=web.throttle, has_valid_credential=partial(signed_credential, web)
    )
    app.include_router(api)
    app.include_router(webhook)
    app.include_router(pages)
    app.include_router(public_report_pages)
    app.include_router(public)
    app.include_router(monitoring)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
