"""The HTML pages: sign-in, the agency inbox and step page, the coordinator's intake and timeline."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from models.access import (
    OFFICER_NEEDED,
    Principal,
    authorize_referral,
    authorize_step,
    check_holder,
    check_link_issued,
    principal_of_link,
    principal_of_token,
    step_ref,
)
from models.audit import record
from models.catalog import stored_pathway
from models.codes import KINDS
from models.disclosure import disclose_all, disclose_for_step, read_notes
from models.engine import (
    accept_step,
    add_consent,
    cancel_referral,
    cancel_step,
    complete_step,
    decide_extension,
    decline_step,
    request_extension,
    reroute_step,
)
from models.errors import BadInput, Forbidden, NotFound
from models.links import microseconds, verify
from models.note import add_note, clean_note, notes_of
from models.referral import Referral
from models.step import Step
from web.action import launch_referral, perform
from web.app import error_page, render
from web.guard import (
    Unauthorized,
    check_csrf,
    check_link_session,
    cookie_session,
    page_principal,
    refuse,
    web_of,
)
from web.language import CANCEL_REASONS, LOCALES, code_label
from web.session import (
    COOKIE,
    LANG_COOKIE,
    SESSION_LIFETIME,
    anonymous,
    encode,
    signed_in,
    with_officer,
)
from web.views import inbox, referral_list, step_view, timeline

pages = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]  # a form field; always optional, so the engine names what is missing


def _set_session(request: Request, response: Response, session) -> Response:
    web = web_of(request)
    response.set_cookie(
        COOKIE,
        encode(web.secret, session),
        httponly=True,
        samesite="lax",
        secure=web.secure_cookies,
        path="/",
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )
    return response


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _local_path(url: str | None) -> str:
    """A same-site path to go back to (never another site: no open redirect)."""
    if (
        not url
        or not url.startswith("/")
        or url.startswith("//")
        or "\\" in url
        or any(ord(c) < 32 or ord(c) == 127 for c in url)
    ):
        return "/"
    return url


def _step_url(reference: str, step_id: int, done: str | None = None) -> str:
    return f"/referrals/{reference}/steps/{step_id}" + (f"?done={done}" if done else "")


# --- entry: links, sign-in, language --------------------------------------------------------------


@pages.get("/")
def home(request: Request):
    """Signed in: the inbox or the coordinator's list; otherwise the sign-in page."""
    session = cookie_session(request)
    if session is None or not session.signed_in:
        return _redirect("/signin")
    return _redirect("/coordinator" if session.kind == "coordinator" else "/inbox")


@pages.get("/s/{token}")
def open_link(request: Request, token: str):
    """Exchange a signed link for a session cookie and go on to a token-free address."""
    web = web_of(request)
    now = web.now()
    try:
        claim = verify(web.secret, token, now)
        principal = principal_of_link(claim)
        target = "/inbox"
        previous = cookie_session(request)
        with web.transaction() as db:
            check_link_issued(db, claim.agency, claim.issued)
            if previous is not None:
                try:
                    check_link_session(db, previous)
                except Forbidden:
                    previous = None  # a withdrawn session is not carried into the new one
            if principal.step_ids:
                step_id = next(iter(principal.step_ids))
                step = db.get(Step, step_id)
                referral = db.get(Referral, step.referral_id) if step else None
                if step is None or referral is None or step.agency != principal.agency:
                    raise NotFound("the step of this link no longer exists")
                target = _step_url(referral.reference, step_id)
    except (Forbidden, NotFound) as exc:
        refuse(web, None, "open-link", exc)
        return error_page(request, 403, hint_key="link_refused")
    issued = microseconds(claim.issued) if claim.issued is not None else None
    session = signed_in(now, principal, until=claim.expires, previous=previous, link_issued=issued)
    return _set_session(request, _redirect(target), session)


@pages.get("/signin")
def signin_page(request: Request, bye: int = 0, next: str = ""):
    """The sign-in form (a token is pasted, never put in the address)."""
    values = {"refused": None, "bye": bye, "next": _local_path(next) if next else ""}
    session = cookie_session(request)
    if session is not None:
        return render(request, "signin.html", values)
    # The form needs a CSRF token before anyone is signed in (against login CSRF).
    fresh = anonymous(web_of(request).now())
    page = render(request, "signin.html", values, session=fresh)
    return _set_session(request, page, fresh)


@pages.post("/signin")
def signin(request: Request, token: Field = "", csrf: Field = "", next: Field = ""):
    """Exchange a personal access token for a session; go on to the page asked for, if any."""
    web = web_of(request)
    previous = check_csrf(request, csrf, "sign-in")
    now = web.now()
    try:
        with web.transaction() as db:
            principal = principal_of_token(db, token, now)
            record(
                db,
                actor=str(principal.actor),
                action="signed-in",
                now=now,
                detail={"grant": principal.grant_id},
            )
    except Forbidden as exc:
        refuse(web, None, "sign-in", exc)
        raise Unauthorized(str(exc)) from None
    session = signed_in(now, principal, previous=previous)
    target = "/coordinator" if principal.is_coordinator else "/inbox"
    if next and _local_path(next) != "/":
        target = _local_path(next)
    return _set_session(request, _redirect(target), session)


@pages.post("/signout")
def signout(request: Request, csrf: Field = ""):
    """End the session."""
    check_csrf(request, csrf, "sign-out")
    response = _redirect("/signin?bye=1")
    response.delete_cookie(COOKIE, path="/")
    return response


@pages.get("/lang/{locale}")
def switch_language(request: Request, locale: str, next: str = "/"):
    """Switch between Bahasa Indonesia and English, and go back."""
    response = _redirect(_local_path(next))
    if locale in LOCALES:
        response.set_cookie(
            LANG_COOKIE,
            locale,
            max_age=365 * 24 * 3600,
            samesite="lax",
            httponly=True,
            secure=web_of(request).secure_cookies,
            path="/",
        )
    return response


# --- agency pages ---------------------------------------------------------------------------------


@pages.get("/inbox")
def inbox_page(request: Request):
    """The agency's open steps, overdue first (a coordinator sees every agency's)."""
    principal = page_principal(request)
    web = web_of(request)
    locale = _locale(request)
    with web.transaction() as db:
        rows = inbox(db, principal, web.catalog, web.now(), locale)
    agency = web.catalog.agency(principal.agency)
    return render(
        request,
        "inbox.html",
        {"rows": rows, "agency": agency, "one_step": principal.step_ids is not None},
    )


def _locale(request: Request) -> str:
    from web.guard import locale_of

    return locale_of(request)


def _step_page(
    request: Request,
    principal: Principal,
    reference: str,
    step_id: int,
    error: str | None = None,
    status: int = 200,
    done: str | None = None,
) -> Response:
    web = web_of(request)
    now = web.now()
    locale = _locale(request)
    with web.transaction() as db:
        referral, step = authorize_step(db, principal, reference, step_id)
        pathway = stored_pathway(db, referral.pathway_id, referral.pathway_version)
        spec = pathway.step(step.key)
        view = step_view(step, referral, db, web.catalog, now, locale)
        actor = str(principal.actor)
        facts = disclose_for_step(
            db, referral=referral, step=step, spec=spec, sealer=web.sealer, actor=actor, now=now
        )
        assert referral.id is not None and step.id is not None
        notes = read_notes(
            db,
            referral=referral,
            notes=notes_of(db, referral.id, {step.id}),
            sealer=web.sealer,
            actor=actor,
            now=now,
        )
    tz = ZoneInfo(view["timezone"])
    for note in notes:
        note["local"] = note["created_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M")
    codes = {
        kind: [(c.value, code_label(c.value, locale)) for c in enum] for kind, enum in KINDS.items()
    }
    session = cookie_session(request)
    return render(
        request,
        "step.html",
        {
            "step": view,
            "facts": facts,
            "notes": notes,
            "codes": codes,
            "error": error,
            "done": done,
            "agency": web.catalog.agency(principal.agency),
            "ask_officer": principal.grant_id is None,
            "officer": session.officer if session else "",
            "min_date": now.astimezone(tz).date().isoformat(),
        },
        status,
    )


@pages.get("/referrals/{reference}/steps/{step_id}")
def step_page(request: Request, reference: str, step_id: int, done: str | None = None):
    """One step: reference, title, deadline, legal basis, only the granted facts, the actions."""
    principal = page_principal(request)
    if principal.is_coordinator:
        return _redirect(f"/referrals/{reference}#step-{step_id}")
    try:
        return _step_page(
            request, principal, reference, step_id, done=done if done and done.isalpha() else None
        )
    except (Forbidden, NotFound) as exc:
        refuse(web_of(request), principal, "view-step", exc, reference=reference, step_id=step_id)
        raise


def _agency_action(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    attempt: str,
    done: str,
    csrf: str,
    officer: str,
    note: str | None,
    engine_call,
):
    """Shared path of the four agency actions: CSRF, officer name, engine call, note, redirect."""
    principal = page_principal(request)
    session = check_csrf(request, csrf, attempt, principal)
    web = web_of(request)
    name = session.officer
    try:
        if principal.grant_id is None and officer.strip():
            name = check_holder(officer)
        if principal.grant_id is None and not name:  # a link names no person: ask once
            raise BadInput(OFFICER_NEEDED)
        text = clean_note(note)
    except BadInput as exc:
        refuse(web, principal, attempt, exc, reference=reference, step_id=step_id)
        return _step_page(request, principal, reference, step_id, error=str(exc), status=400)
    if principal.grant_id is None:
        principal = Principal(
            kind=principal.kind, agency=principal.agency, holder=name, step_ids=principal.step_ids
        )
    actor = principal.actor

    def work(db, referral, step):
        row = engine_call(db, referral, step, actor, web.now())
        if text:
            add_note(
                db,
                referral_id=referral.id,
                step_id=row.id,
                author=str(actor),
                action=attempt,
                text=text,
                sealer=web.sealer,
                now=web.now(),
            )
        return row

    try:
        outcome = perform(
            web,
            principal,
            attempt=attempt,
            reference=reference,
            step_id=step_id,
            work=work,
            background=background,
            role="agency",
        )
    except (Forbidden, NotFound):
        raise
    except BadInput as exc:
        status = 409 if type(exc).__name__ == "IllegalTransition" else 400
        return _step_page(request, principal, reference, step_id, error=str(exc), status=status)
    response = _redirect(
        _step_url(outcome.reference, step_id, done if outcome.changed else "already")
    )
    if name != session.officer:
        _set_session(request, response, with_officer(session, name))
    return response


@pages.post("/referrals/{reference}/steps/{step_id}/accept")
def accept(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    officer: Field = "",
):
    """Accept the step."""
    return _agency_action(
        request,
        background,
        reference,
        step_id,
        "accept",
        "accepted",
        csrf,
        officer,
        None,
        lambda db, r, s, actor, now: accept_step(
            db, reference=r.reference, step=step_ref(s), agency=s.agency, actor=actor, now=now
        ),
    )


@pages.post("/referrals/{reference}/steps/{step_id}/decline")
def decline(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    officer: Field = "",
    reason: Field = "",
    note: Field = "",
):
    """Decline the step with a reason code and an optional (sealed) note."""
    web = web_of(request)
    return _agency_action(
        request,
        background,
        reference,
        step_id,
        "decline",
        "declined",
        csrf,
        officer,
        note,
        lambda db, r, s, actor, now: decline_step(
            db,
            reference=r.reference,
            step=step_ref(s),
            agency=s.agency,
            reason=reason,
            actor=actor,
            now=now,
            catalog=web.catalog,
        ),
    )


@pages.post("/referrals/{reference}/steps/{step_id}/complete")
def complete(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    officer: Field = "",
    outcome: Field = "",
    note: Field = "",
):
    """Complete the step with an outcome code and an optional (sealed) note."""
    web = web_of(request)
    return _agency_action(
        request,
        background,
        reference,
        step_id,
        "complete",
        "completed",
        csrf,
        officer,
        note,
        lambda db, r, s, actor, now: complete_step(
            db,
            reference=r.reference,
            step=step_ref(s),
            agency=s.agency,
            outcome=outcome,
            actor=actor,
            now=now,
            catalog=web.catalog,
        ),
    )


def local_moment(day: str, at: str, tz: str) -> datetime:
    """A date and time typed in an agency's local time, as an aware UTC moment."""
    try:
        moment = datetime.combine(
            date.fromisoformat(day.strip()), time.fromisoformat((at or "17:00").strip())
        )
    except ValueError:
        raise BadInput("the new date is not a date and time like 2026-12-10 17:00") from None
    return moment.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


@pages.post("/referrals/{reference}/steps/{step_id}/extend")
def extend(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    officer: Field = "",
    reason: Field = "",
    until_date: Field = "",
    until_time: Field = "17:00",
    note: Field = "",
):
    """Ask the coordinator for more time: a reason code and a proposed date (local time)."""
    web = web_of(request)

    def call(db, r, s, actor, now):
        until = local_moment(until_date, until_time, web.catalog.agency(s.agency).timezone)
        return request_extension(
            db,
            reference=r.reference,
            step=step_ref(s),
            agency=s.agency,
            until=until,
            reason=reason,
            actor=actor,
            now=now,
        )

    return _agency_action(
        request,
        background,
        reference,
        step_id,
        "request-extension",
        "extension",
        csrf,
        officer,
        note,
        call,
    )


# --- coordinator pages ----------------------------------------------------------------------------


def _coordinator(request: Request, attempt: str) -> Principal:
    principal = page_principal(request)
    if not principal.is_coordinator:
        exc = Forbidden("only a coordinator may open this page")
        refuse(web_of(request), principal, attempt, exc)
        raise exc
    return principal


@pages.get("/coordinator")
def coordinator_home(request: Request, all: int = 0):
    """Referrals: those that need the coordinator first."""
    _coordinator(request, "view-referrals")
    web = web_of(request)
    with web.transaction() as db:
        rows = referral_list(db, web.catalog, web.now(), _locale(request), include_closed=bool(all))
    return render(request, "referrals.html", {"rows": rows, "show_all": bool(all)})


def _intake_context(request: Request, values: dict, error: str | None) -> dict:
    web = web_of(request)
    locale = _locale(request)
    # Demonstration pathways (clocks in seconds) are never offered for a real case.
    pathways = sorted((p for p in web.catalog.pathways.values() if not p.demo), key=lambda p: p.id)
    used_by: dict[str, list[str]] = {}
    for p in pathways:
        for slug in sorted(p.agencies()):
            used_by.setdefault(slug, []).append(p.id)
    return {
        "pathways": [(p.id, p.title.text(locale), sorted(p.agencies())) for p in pathways],
        "agencies": web.catalog.directory.agencies,
        "used_by": used_by,
        "values": values,
        "error": error,
    }


@pages.get("/coordinator/intake")
def intake_page(request: Request):
    """The intake form."""
    _coordinator(request, "view-intake")
    values = {
        "pathway": "",
        "urgency": "regular",
        "consent": [],
        "case": {
            "wants_prosecution": True,
            "needs_shelter": True,
            "claims_restitution": True,
            "wants_return": True,
        },
    }
    return render(request, "intake.html", _intake_context(request, values, None))


@pages.post("/coordinator/intake")
async def intake_submit(request: Request, background: BackgroundTasks):
    """Launch a referral from the intake form."""
    principal = _coordinator(request, "launch")
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")), "launch", principal)
    get = lambda key: str(form.get(key, "")).strip()  # noqa: E731
    consent = [str(v) for v in form.getlist("consent")]
    case_keys = ("wants_prosecution", "needs_shelter", "claims_restitution", "wants_return")
    values = {
        "pathway": get("pathway"),
        "urgency": get("urgency") or "regular",
        "name": get("name"),
        "sex": get("sex"),
        "birth_year": get("birth_year"),
        "nationality": get("nationality").upper(),
        "languages": get("languages"),
        "phone": get("phone"),
        "home_district": get("home_district"),
        "address": get("address"),
        "consent": consent,
        "override": bool(form.get("override")),
        "override_reason": get("override_reason"),
        "case": {k: bool(form.get(k)) for k in case_keys},
    }
    person: dict = {
        "name": values["name"],
        "sex": values["sex"],
        "nationality": values["nationality"],
        "languages": [
            x.strip().lower() for x in values["languages"].replace(";", ",").split(",") if x.strip()
        ],
    }
    if values["birth_year"]:
        person["birth_year"] = int(values["birth_year"]) if values["birth_year"].isdigit() else -1
    for key in ("phone", "home_district", "address"):
        if values[key]:
            person[key] = values[key]
    intake = {
        "pathway": values["pathway"],
        "urgency": values["urgency"],
        "person": person,
        "consent": (
            {"override": {"by": principal.holder, "reason": values["override_reason"]}}
            if values["override"]
            else {"agencies": consent, "recorded_by": principal.holder}
        ),
        "case": values["case"],
    }
    web = web_of(request)
    try:
        chosen = web.catalog.pathways.get(values["pathway"])
        if chosen is not None and chosen.demo:
            raise BadInput(
                f"'{chosen.id}' is a demonstration pathway with deadlines in seconds: "
                "choose the pathway of the case"
            )
        outcome = await _in_thread(launch_referral, web, principal, intake, background)
    except BadInput as exc:
        return render(request, "intake.html", _intake_context(request, values, str(exc)), 400)
    return _redirect(f"/referrals/{outcome.reference}?done=launched")


async def _in_thread(fn, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


@pages.get("/referrals/{reference}")
def referral_page(request: Request, reference: str, done: str | None = None):
    """The coordinator's timeline; an agency with a step in it goes to its step (404 otherwise)."""
    principal = page_principal(request)
    web = web_of(request)
    locale = _locale(request)
    try:
        with web.transaction() as db:
            referral = authorize_referral(db, principal, reference)
            if not principal.is_coordinator:
                own = db.exec(
                    select(Step.id).where(
                        Step.referral_id == referral.id, Step.agency == principal.agency
                    )
                ).all()
                ids = sorted(
                    i for i in own if principal.step_ids is None or i in principal.step_ids
                )
                return _redirect(_step_url(referral.reference, ids[-1]))
            data = timeline(db, referral, web.catalog, web.now(), locale)
    except (Forbidden, NotFound) as exc:
        refuse(web, principal, "view-referral", exc, reference=reference)
        raise
    agencies = web.catalog.directory.agencies
    return render(
        request,
        "timeline.html",
        {
            "r": data,
            "agencies": agencies,
            "cancel_reasons": [(c, code_label(c, locale)) for c in CANCEL_REASONS],
            "done": done if done and done.isalpha() else None,
            "error": None,
        },
    )


@pages.get("/referrals/{reference}/person")
def person_page(request: Request, reference: str):
    """The person's facts for the coordinator; the view is audited."""
    principal = _coordinator(request, "view-person")
    web = web_of(request)
    with web.transaction() as db:
        referral = authorize_referral(db, principal, reference)
        facts = disclose_all(
            db, referral=referral, sealer=web.sealer, actor=str(principal.actor), now=web.now()
        )
        assert referral.id is not None
        notes = read_notes(
            db,
            referral=referral,
            notes=notes_of(db, referral.id),
            sealer=web.sealer,
            actor=str(principal.actor),
            now=web.now(),
        )
    return render(
        request, "person.html", {"reference": referral.reference, "facts": facts, "notes": notes}
    )


def _coordinator_action(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int | None,
    attempt: str,
    csrf: str,
    work,
):
    principal = page_principal(request)
    check_csrf(request, csrf, attempt, principal)
    web = web_of(request)
    try:
        outcome = perform(
            web,
            principal,
            attempt=attempt,
            reference=reference,
            step_id=step_id,
            work=work,
            background=background,
            role="coordinator",
        )
    except (Forbidden, NotFound):
        raise
    except BadInput as exc:
        return _timeline_error(
            request, reference, str(exc), 409 if type(exc).__name__ == "IllegalTransition" else 400
        )
    return _redirect(
        f"/referrals/{outcome.reference}?done={'changed' if outcome.changed else 'already'}"
        + (f"#step-{step_id}" if step_id else "")
    )


def _timeline_error(request: Request, reference: str, error: str, status: int) -> Response:
    web = web_of(request)
    locale = _locale(request)
    with web.transaction() as db:
        referral = authorize_referral(db, page_principal(request), reference)
        data = timeline(db, referral, web.catalog, web.now(), locale)
    return render(
        request,
        "timeline.html",
        {
            "r": data,
            "agencies": web.catalog.directory.agencies,
            "cancel_reasons": [(c, code_label(c, locale)) for c in CANCEL_REASONS],
            "done": None,
            "error": error,
        },
        status,
    )


def _cancel_code(reason: str) -> str:
    if reason not in CANCEL_REASONS:
        raise BadInput(f"a cancel reason is required (one of: {', '.join(CANCEL_REASONS)})")
    return reason


@pages.post("/referrals/{reference}/steps/{step_id}/reroute")
def reroute(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    to: Field = "",
):
    """Hand a declined (or open) step to another agency."""
    web = web_of(request)
    principal = page_principal(request)
    return _coordinator_action(
        request,
        background,
        reference,
        step_id,
        "reroute",
        csrf,
        lambda db, r, s: reroute_step(
            db,
            reference=r.reference,
            step=step_ref(s),
            to_agency=to,
            actor=principal.actor,
            now=web.now(),
            catalog=web.catalog,
        ),
    )


@pages.post("/referrals/{reference}/steps/{step_id}/decide-extension")
def decide(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    decision: Field = "",
    until_date: Field = "",
    until_time: Field = "17:00",
):
    """Approve (optionally with another date) or refuse an agency's request for more time."""
    web = web_of(request)
    principal = page_principal(request)

    def work(db, r, s):
        if decision not in ("approve", "refuse"):
            raise BadInput("choose approve or refuse")
        until = (
            local_moment(until_date, until_time, web.catalog.agency(s.agency).timezone)
            if until_date.strip()
            else None
        )
        return decide_extension(
            db,
            reference=r.reference,
            step=step_ref(s),
            approve=decision == "approve",
            actor=principal.actor,
            now=web.now(),
            until=until,
        )

    return _coordinator_action(
        request, background, reference, step_id, "decide-extension", csrf, work
    )


@pages.post("/referrals/{reference}/steps/{step_id}/cancel")
def cancel_one(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    reason: Field = "",
):
    """Cancel a step that is no longer needed."""
    web = web_of(request)
    principal = page_principal(request)
    return _coordinator_action(
        request,
        background,
        reference,
        step_id,
        "cancel-step",
        csrf,
        lambda db, r, s: cancel_step(
            db,
            reference=r.reference,
            step=step_ref(s),
            reason=_cancel_code(reason),
            actor=principal.actor,
            now=web.now(),
            catalog=web.catalog,
        ),
    )


@pages.post("/referrals/{reference}/cancel")
def cancel_all(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    csrf: Field = "",
    reason: Field = "",
):
    """Close a referral: every step not yet finished is cancelled."""
    web = web_of(request)
    principal = page_principal(request)
    return _coordinator_action(
        request,
        background,
        reference,
        None,
        "cancel-referral",
        csrf,
        lambda db, r, s: cancel_referral(
            db,
            reference=r.reference,
            reason=_cancel_code(reason),
            actor=principal.actor,
            now=web.now(),
        ),
    )


@pages.post("/referrals/{reference}/consent")
def consent(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    csrf: Field = "",
    agency: Field = "",
):
    """Record the victim's consent to share with one more agency (before a re-route)."""
    web = web_of(request)
    principal = page_principal(request)
    return _coordinator_action(
        request,
        background,
        reference,
        None,
        "add-consent",
        csrf,
        lambda db, r, s: add_consent(
            db,
            reference=r.reference,
            agency=agency,
            actor=principal.actor,
            now=web.now(),
            catalog=web.catalog,
        ),
    )


@pages.get("/docs")
def api_reference(request: Request):
    """The API reference, rendered from the OpenAPI schema on the server (no script, works offline)."""
    return render(
        request,
        "docs.html",
        {"api": request.app.openapi(), "base_url": web_of(request).settings.base_url},
    )
