"""The web inbox for agencies and the coordinator pages: `create_app(settings)` builds the FastAPI app.

Server-rendered HTML (Jinja2, autoescaped), no scripts, Bahasa Indonesia by default; a JSON API
for the same actions under /api (reference at /docs, schema at /openapi.json). All domain rules
live in models/; this package checks who is asking, calls the engine and renders the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.catalog import Catalog, load_catalog
from models.database import engine_for, transaction
from models.errors import Forbidden, IllegalTransition, NotFound, RujukanError
from models.seal import Sealer
from models.settings import PROJECT_ROOT, Settings
from web.access_log import install_redaction
from web.guard import CsrfRefused, SignInRequired, Unauthorized, cookie_session, locale_of
from web.language import words
from web.session import COOKIE, WebSession

TEMPLATES = PROJECT_ROOT / "templates" / "web"
STATIC = Path(__file__).resolve().parent / "static"

# No script, no external resource: the pages work offline on any phone browser.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


@dataclass
class Web:
    """What every request needs: settings, the case database, the catalog, the sealer, the clock."""

    settings: Settings
    engine: Engine
    catalog: Catalog
    sealer: Sealer
    secret: str
    templates: Jinja2Templates
    clock: Callable[[], datetime] = utcnow

    def now(self) -> datetime:
        """The current moment (a test may give the app its own clock)."""
        return self.clock()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction on the case database."""
        with transaction(self.engine) as session:
            yield session

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS when the public address is HTTPS."""
        return self.settings.base_url.startswith("https://")


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


def render(
    request: Request,
    name: str,
    context: dict,
    status_code: int = 200,
    session: WebSession | None = None,
) -> HTMLResponse:
    """A page in the reader's language, with the session's CSRF token for its forms."""
    locale = locale_of(request)
    session = session or cookie_session(request)
    me = session if session and session.signed_in else None
    catalog = request.app.state.web.catalog
    page = {
        "request": request,
        "me_agency": catalog.agency(me.agency).name
        if me and me.agency in catalog.directory
        else "",
        "t": words(locale),
        "locale": locale,
        "csrf": session.csrf if session else "",
        "me": session if session and session.signed_in else None,
        "path": request.url.path,
        **context,
    }
    return request.app.state.web.templates.TemplateResponse(
        request, name, page, status_code=status_code
    )


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


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


STATUS = {NotFound: 404, Forbidden: 403, IllegalTransition: 409}


def error_status(exc: RujukanError) -> int:
    """The HTTP status of an engine error."""
    for kind, status in STATUS.items():
        if isinstance(exc, kind):
            return status
    return 400


def create_app(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The web app for `settings`; `rujukan serve` runs it with uvicorn (see web/access_log.py)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Logging is configured by now (uvicorn does it before startup): make sure the access
        # log cannot record a link token, whatever configuration the server was started with.
        install_redaction()
        yield

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
    app.state.web = Web(
        settings=settings,
        engine=engine_for(settings.resolved_database_url),
        catalog=load_catalog(settings),
        sealer=Sealer(settings.resolved_secret_key()),
        secret=settings.resolved_secret_key(),
        templates=_templates(),
        clock=clock or utcnow,
    )
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
        if app.state.web.secure_cookies:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    @app.exception_handler(RujukanError)
    async def engine_error(request: Request, exc: RujukanError):
        status = error_status(exc)
        if _is_api(request):
            return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status)
        return error_page(request, status, str(exc))

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized):
        if _is_api(request):
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
        return RedirectResponse(
            f"/signin?next={quote(request.url.path, safe='/')}", status_code=303
        )

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _exc: CsrfRefused):
        return error_page(request, 403, hint_key="csrf_refused")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        # FastAPI's default answer echoes the input, which may be the person's data: leave it out.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        )
        if _is_api(request):
            return JSONResponse({"error": "BadInput", "message": problems}, 400)
        return error_page(request, 400, problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if _is_api(request) or exc.status_code not in (404, 405):
            return JSONResponse({"error": "HTTPError", "message": str(exc.detail)}, exc.status_code)
        return error_page(request, exc.status_code)

    from web.api import api
    from web.pages import pages

    app.include_router(api)
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
